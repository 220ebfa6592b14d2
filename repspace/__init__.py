"""repspace: compare the information content of probabilistic representation spaces."""

__version__ = "0.1.0"

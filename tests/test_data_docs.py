"""The examples in the data modules' docstrings run as written."""

import doctest
import importlib

import pytest

MODULES = [
    "repspace.data",
    "repspace.data.base",
    "repspace.data.procedural",
    "repspace.data.digits",
    "repspace.data.fingerprint",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0

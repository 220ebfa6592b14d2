"""The public API's docstring examples run as written."""

import doctest

import repspace.api
import repspace.pipeline.structure


def test_docstring_examples_run():
    for module in (repspace.api, repspace.pipeline.structure):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(repspace.api).attempted >= 4

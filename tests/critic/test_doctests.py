"""The examples in the package's docstrings run and hold."""

import doctest
import importlib

import pytest

MODULES = ["data", "judging", "policy", "prompts", "reports", "rewards", "selfcritic"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"visionrl.critic.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0

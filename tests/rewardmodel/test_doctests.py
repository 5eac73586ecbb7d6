"""The examples in the package's docstrings run and hold (hybrid reward, ensemble weights, mixer specs,
RM-Bench levels, calibration, the ablation table)."""

import doctest
import importlib

import pytest

MODULES = ["demo_data", "ensemble", "mixer", "rewards", "sources", "textbench", "train"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"visionrl.rewardmodel.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0

"""Every module of every package imports, and importing has no heavy side effects on the CLIs' parse path."""

import importlib
import pkgutil
import subprocess
import sys

import pytest
import visionrl


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(visionrl.__path__, prefix="visionrl."))


@pytest.mark.parametrize("name", _modules())
def test_module_imports(name):
    importlib.import_module(name)


def test_namespace_package_has_no_init():
    assert not hasattr(visionrl, "__file__") or visionrl.__file__ is None


@pytest.mark.parametrize("module", ["visionrl.selfreward.cli", "visionrl.robustness.cli", "visionrl.critic.cli",
                                    "visionrl.rewardmodel.cli", "visionrl.judge.cli"])
def test_cli_modules_do_not_import_torch(module):
    """`--help` and argument parsing stay fast: torch/lightning/transformers load only after parsing."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Load the model a flag names (`--model`, `--judge`, `--judges`, `--reward-model`): the policy to train, a
model to evaluate or a judge. Every failure is a `UserError` naming that flag.

`check_model_source` is the cheap half (does the folder exist, is it a model folder, is it a hub id?): CLIs
run it for every model flag before loading anything, so a mistyped judge fails in a second, not after the
evaluated model has loaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionrl.core.errors import UserError

if TYPE_CHECKING:
    from visionrl.core.hparams import LoadOptions
    from visionrl.core.vlm.model import VLM


def check_model_source(name: str, flag: str = "--model") -> None:
    """Raise `UserError` unless `name` is `demo`, a local model folder or a hub id (owner/name).

    A visionrl run folder (or a checkpoint inside one) is named as such, with the folder to use instead.
    """
    if name == "demo":
        return
    local = Path(name).expanduser()
    if local.exists():
        run_dir = _run_dir_of(local)
        if run_dir is not None:
            raise UserError(f"{flag} {name}: this is a visionrl run folder; use {run_dir / 'model'}")
        if local.is_file():
            raise UserError(f"{flag} {name}: expected a model folder (config.json, weights, processor), not a file")
        if not (local / "config.json").is_file():
            raise UserError(f"{flag} {name}: no config.json in this folder; it is not a Hugging Face model folder")
        return
    if name.startswith(("/", ".", "~")):
        raise UserError(f"{flag} {name}: no such model folder")
    if name.count("/") != 1 or not all(name.split("/")):
        raise UserError(f"{flag} {name!r} is neither a local model folder nor a hub id (owner/name)")


def _run_dir_of(path: Path) -> Path | None:
    """The visionrl run folder that `path` is, or whose checkpoint (or checkpoints folder) it is."""
    def is_run(d: Path) -> bool:
        return (d / "config.yaml").is_file() and ((d / "model").is_dir() or (d / "checkpoints").is_dir())

    if path.is_dir() and (path / "config.json").is_file():
        return None  # a model folder (e.g. <run>/model itself)
    for candidate in (path, path.parent, path.parent.parent):
        if is_run(candidate):
            return candidate
    return None


def load_model(name: str, options: LoadOptions | None = None, *, flag: str = "--model",
               trust_remote_code: bool = False) -> VLM:
    """Resolve `name` (`demo` builds/caches the demo model) and load it; every error names `flag`."""
    from huggingface_hub.errors import StrictDataclassError
    from visionrl.core.demo import resolve_model
    from visionrl.core.hparams import LoadOptions
    from visionrl.core.vlm.model import ModelLoadError, load_vlm

    check_model_source(name, flag)
    path = resolve_model(name)
    local = Path(path).expanduser()
    if local.exists():
        path = str(local)
    opts = options if options is not None else LoadOptions()
    if trust_remote_code and not opts.trust_remote_code:
        opts = dataclasses.replace(opts, trust_remote_code=True)
    try:
        return load_vlm(path, opts)
    except ModelLoadError as err:
        if not opts.trust_remote_code and "trust_remote_code" in str(err.__cause__):
            raise UserError(f"{flag} {name} needs to run code from its repo; pass --trust-remote-code "
                            "only if you trust that code") from err
        raise UserError(f"{flag}: {err}") from err
    except StrictDataclassError as err:  # transformers' config classes validate their fields
        cause = err.__cause__ or err
        raise UserError(f"{flag} {name}: invalid config.json ({_first_line(cause)})") from err
    except OSError as err:  # config and processor loaded, weights did not (e.g. only pickled .bin files)
        raise UserError(f"{flag} {name}: cannot load safetensors weights ({_first_line(err)})") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def eval_model(name: str, options: LoadOptions | None = None, *, flag: str = "--model", **kw: Any) -> VLM:
    """`load_model` in evaluation mode (dropout off, no gradients needed)."""
    vlm = load_model(name, options, flag=flag, **kw)
    vlm.model.eval()
    return vlm

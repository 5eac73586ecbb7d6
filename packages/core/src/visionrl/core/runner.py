"""The part of every train CLI after parsing: load the model, fit, export, write metrics, push.

Paper packages build their LightningModule and call `fit_and_export`; the output-directory contract
(config.yaml, tensorboard/, checkpoints/, model/, samples.jsonl, metrics.json) is honoured here once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from visionrl.core.checkpoints import resolve_resume
from visionrl.core.cli import build_trainer, prepare_output_dir
from visionrl.core.config import RunArgs, validate_run_args
from visionrl.core.errors import UserError
from visionrl.core.hub import ModelCardInfo


def load_policy(run: RunArgs, options: Any) -> Any:
    """Resolve `--model` (`demo` builds/caches the demo model) and load it; errors name the flag."""
    from huggingface_hub.errors import StrictDataclassError
    from visionrl.core.demo import resolve_model
    from visionrl.core.vlm.model import LoadOptions, ModelLoadError, load_vlm

    path = resolve_model(run.model)
    local = Path(path).expanduser()
    if local.exists():
        path = str(local)
    elif path.startswith(("/", ".", "~")):
        raise UserError(f"--model {run.model}: no such model folder")
    elif "/" not in path:
        raise UserError(f"--model {run.model!r} is neither a local model folder nor a hub id (owner/name)")
    opts = options if options is not None else LoadOptions()
    if run.trust_remote_code and not opts.trust_remote_code:
        opts = dataclasses.replace(opts, trust_remote_code=True)
    try:
        return load_vlm(path, opts)
    except ModelLoadError as err:
        if not opts.trust_remote_code and "trust_remote_code" in str(err.__cause__):
            raise UserError(f"--model {run.model} needs to run code from its repo; pass --trust-remote-code "
                            "only if you trust that code") from err
        raise UserError(f"--model: {err}") from err
    except StrictDataclassError as err:  # transformers' config classes validate their fields
        cause = err.__cause__ or err
        raise UserError(f"--model {run.model}: invalid config.json ({_first_line(cause)})") from err
    except OSError as err:  # config and processor loaded, weights did not (e.g. only pickled .bin files)
        raise UserError(f"--model {run.model}: cannot load safetensors weights ({_first_line(err)})") from err


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def start(run: RunArgs) -> None:
    """Validate shared flags and seed everything (before any model is built)."""
    import lightning as L
    import torch

    validate_run_args(run)
    torch.set_num_threads(run.threads or max(1, (os.cpu_count() or 1) // run.devices))
    L.seed_everything(run.seed, workers=True, verbose=False)


def open_output_dir(run: RunArgs, config: Any) -> Path:
    """Create the output dir and write config.yaml (rank 0) once model and data have loaded, so a
    user error never leaves a fresh output directory behind."""
    return prepare_output_dir(run, config)


def fit_and_export(run: RunArgs, module: Any, *, trainer_steps: int, data_steps: int, card: ModelCardInfo,
                   wrap_classes: set[type] | None = None) -> dict[str, Any]:
    """Fit (resuming when asked), export `<output_dir>/model`, write `metrics.json`, push when asked."""
    from visionrl.core.cli import decoder_layer_classes
    from visionrl.core.hub import export_model, push_to_hub
    from visionrl.core.lit.datamodules import StepDataModule

    trainer = build_trainer(run, max_steps=trainer_steps, find_unused_parameters=True,
                            fsdp_wrap_classes=wrap_classes or decoder_layer_classes(module.vlm.model))
    # weights_only=True also for strategies that bypass the checkpoint IO (validate_run_args checked the file).
    trainer.fit(module, datamodule=StepDataModule(data_steps), ckpt_path=resolve_resume(run), weights_only=True)
    # ModelCheckpoint only writes every `save_every_n_steps`; the final state must be resumable too.
    trainer.save_checkpoint(run.output_dir / "checkpoints" / "last.ckpt", weights_only=False)
    metrics = dict(module.eval_results)
    metrics["train"] = {k: float(v) for k, v in trainer.logged_metrics.items()}
    metrics["steps"] = int(trainer.global_step)
    # Gathered on every rank (a collective under FSDP), written by rank 0 only.
    state = trainer.strategy.lightning_module_state_dict()
    if trainer.global_rank == 0:
        state = {k.removeprefix("policy."): v for k, v in state.items() if k.startswith("policy.")}
        model = module.vlm.model
        if hasattr(model, "merge_and_unload"):  # LoRA: export merged full weights
            model, state = model.merge_and_unload(), None
        card = dataclasses.replace(card, metrics={k: metrics[k] for k in ("before", "after") if k in metrics})
        out = export_model(model, module.vlm.processor, run.output_dir / "model", card, state_dict=state)
        _write_json(run.output_dir / "metrics.json", metrics)
        if run.push_to_hub:
            url = push_to_hub(out, run.push_to_hub, commit_message=f"{card.method} ({card.paper})")
            print(f"pushed to {url}")
    trainer.strategy.barrier()
    return metrics


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)

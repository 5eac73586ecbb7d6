"""A trained reward model as a scorer: the exported backbone folder plus its head files.

`RewardModelModule.export_extras` writes, beside the Hugging Face export of the backbone,

    reward_head.safetensors   the head's weights (fp32)
    reward_head.json          {"kind", "layers", "hidden", "activation", "pooling", "d_model", "length_norm", ...}

`load_reward_model(path)` reads the three back into a `RewardScorer` whose `score(prompts, responses)` gives
the scores the trained module gave (same forward: `reward_model.score_texts`). Errors name the flag the path
came from (`--reward-model` by default); a folder without `reward_head.json` is not a reward model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visionrl.core.errors import UserError

if TYPE_CHECKING:
    import torch
    from visionrl.core.chat import Prompt
    from visionrl.core.hparams import LoadOptions, RewardHeadConfig
    from visionrl.core.vlm.model import VLM

HEAD_WEIGHTS = "reward_head.safetensors"
HEAD_CONFIG = "reward_head.json"
POOLING = "last_token"
"""The hidden state the head reads: the last non-pad token of [prompt | response + EOS]."""
FORMAT_VERSION = 1


def write_reward_head(model_dir: Path, head_state: Mapping[str, torch.Tensor], cfg: RewardHeadConfig,
                      d_model: int, *, length_norm: bool) -> None:
    """Write the head's weights and description into `model_dir`, each file atomically (temp file + rename)."""
    from safetensors.torch import save_file
    from visionrl.core.evaluation.outputs import write_json

    assert head_state, "the module state holds no head.* weights"
    model_dir = Path(model_dir)
    tmp = model_dir / f".{HEAD_WEIGHTS}.tmp"
    try:
        save_file({k: v.detach().float().contiguous().cpu() for k, v in head_state.items()}, str(tmp))
        os.replace(tmp, model_dir / HEAD_WEIGHTS)
    finally:
        tmp.unlink(missing_ok=True)
    write_json(model_dir / HEAD_CONFIG, {
        "format_version": FORMAT_VERSION, "kind": cfg.kind, "layers": cfg.layers if cfg.kind == "mlp" else 1,
        "hidden": (cfg.hidden or d_model) if cfg.kind == "mlp" else None, "activation": cfg.activation,
        "pooling": POOLING, "d_model": d_model, "length_norm": length_norm, "dtype": "float32"})


def read_head_spec(path: str | Path, flag: str = "--reward-model") -> dict[str, Any]:
    """`reward_head.json` of the folder `path`; `UserError` naming `flag` when it is not a reward model."""
    folder = Path(path).expanduser()
    spec_file = folder / HEAD_CONFIG
    if not spec_file.is_file():
        raise UserError(f"{flag} {path}: not a reward model (no {HEAD_CONFIG}); pass the model folder a "
                        "reward-model run exported (<output-dir>/model)")
    if not (folder / HEAD_WEIGHTS).is_file():
        raise UserError(f"{flag} {path}: {HEAD_CONFIG} is there but {HEAD_WEIGHTS} is missing")
    try:
        spec = json.loads(spec_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{flag} {path}: {HEAD_CONFIG} is not valid JSON ({err})") from None
    missing = [k for k in ("kind", "layers", "hidden", "activation", "pooling", "d_model") if k not in spec]
    if missing or spec.get("pooling") != POOLING:
        raise UserError(f"{flag} {path}: {HEAD_CONFIG} lacks {missing} or has an unknown pooling "
                        f"{spec.get('pooling')!r} (expected {POOLING!r})")
    return spec


def head_config(spec: Mapping[str, Any]) -> RewardHeadConfig:
    from visionrl.core.hparams import RewardHeadConfig

    return RewardHeadConfig(kind=spec["kind"], layers=int(spec["layers"]), activation=spec["activation"],
                            hidden=int(spec["hidden"]) if spec.get("hidden") else None)


class RewardScorer:
    """A loaded reward model: `score(prompts, responses)` → scores (B,) on the CPU, no gradients."""

    def __init__(self, vlm: VLM, head: torch.nn.Module, spec: Mapping[str, Any], name: str = ""):
        self.vlm, self.head, self.spec, self.name = vlm, head, dict(spec), name
        self.length_norm = bool(spec.get("length_norm", False))

    @property
    def device(self) -> torch.device:
        return next(self.vlm.model.parameters()).device

    def to(self, device: torch.device | str) -> RewardScorer:
        self.vlm.model.to(device)
        self.head.to(device)
        return self

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int = 16) -> torch.Tensor:
        """Scores (B,) of `responses` to `prompts`, `batch_size` rows per forward."""
        import torch
        from visionrl.core.lit.reward_model import score_texts

        assert len(prompts) == len(responses), f"{len(prompts)} prompts but {len(responses)} responses"
        if not prompts:
            return torch.zeros(0)
        with torch.no_grad():
            parts = [score_texts(self.vlm, self.head, prompts[i:i + batch_size], responses[i:i + batch_size],
                                 length_norm=self.length_norm, device=self.device)
                     for i in range(0, len(prompts), batch_size)]
        return torch.cat(parts).float().cpu()


def load_reward_model(path: str | Path, options: LoadOptions | None = None, *, flag: str = "--reward-model",
                      device: torch.device | str | None = None) -> RewardScorer:
    """The reward model exported at `path` (backbone folder + head files), in evaluation mode."""
    from safetensors.torch import load_file
    from visionrl.core.evaluation.models import check_model_source, eval_model
    from visionrl.core.lit.reward_model import build_head

    check_model_source(str(path), flag)
    spec = read_head_spec(path, flag)
    try:
        head = build_head(int(spec["d_model"]), head_config(spec)).float()
        head.load_state_dict(load_file(str(Path(path).expanduser() / HEAD_WEIGHTS)))
    except (ValueError, RuntimeError, OSError) as err:  # unknown kind/activation, shape mismatch, bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{flag} {path}: the head files do not fit together ({first})") from None
    vlm = eval_model(str(path), options, flag=flag)
    hidden = vlm.model.config.get_text_config().hidden_size
    if hidden != int(spec["d_model"]):
        raise UserError(f"{flag} {path}: the head reads width {spec['d_model']} but the model's hidden size is {hidden}")
    head.eval()
    scorer = RewardScorer(vlm, head, spec, name=str(path))
    return scorer.to(device) if device is not None else scorer

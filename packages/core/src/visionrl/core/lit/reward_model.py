"""Bradley-Terry reward model as a LightningModule: a VLM backbone plus a scalar head.

A response's score is the head applied to the backbone's last hidden state at the last non-pad token
of [left-padded prompt | right-padded response + EOS], the same layout the policy is trained on, so a
reward model and a policy read identical sequences. Loss: `bradley_terry_loss` on (chosen, rejected).
Manual optimisation with micro-batches; rows are picked per step (`records_for_step`), so resume is exact.

The head stays in fp32 whatever the backbone's dtype (it reads the hidden state cast to fp32, outside any
autocast); with `length_norm` a score is r / log(len + 1) (BaseReward Algorithm 1) in training, evaluation
and export alike. Text-only and image prompts may share a batch; Mllama, whose processor cannot mix them,
scores each modality in its own forward (`MODALITY_BUCKETED`). `export_extras` writes the trained head
beside the exported model (`reward_head.safetensors` + `reward_head.json`); `lit.reward_scorer`
loads the pair back as a scorer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from PIL import Image
from visionrl.core.data.records import PairRecord
from visionrl.core.hparams import RewardHeadConfig, RewardModelConfig
from visionrl.core.lit.common import (
    EvalFn,
    HeldOutEval,
    accumulate_and_step,
    build_optimizer,
    log_step,
    records_for_step,
)
from visionrl.core.losses import BTOut, bradley_terry_loss, length_normalize
from visionrl.core.vlm.model import VLM, Prompt
from visionrl.core.vlm.sharing import encode_prompts

ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    "none": torch.nn.Identity, "relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU,
    "tanh": torch.nn.Tanh,
}


class KeepFloat32:
    """Mixin for head modules: parameters stay fp32 through any `.to(dtype)`/`.half()`/`.bfloat16()` (a `-true`
    precision plugin casts the whole LightningModule before the optimiser and DDP see it); device moves work."""

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> Any:
        super()._apply(fn, recurse)  # type: ignore[misc]
        return super()._apply(lambda t: t.float() if t.is_floating_point() else t, recurse)  # type: ignore[misc]


class Float32Linear(KeepFloat32, torch.nn.Linear):
    pass


class Float32Sequential(KeepFloat32, torch.nn.Sequential):
    pass


def linear_head(d_model: int, cfg: RewardHeadConfig) -> torch.nn.Module:
    return Float32Linear(d_model, 1)


def mlp_head(d_model: int, cfg: RewardHeadConfig) -> torch.nn.Module:
    """`cfg.layers` linear layers (the last one → 1) with `cfg.activation` between them."""
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"unknown head activation {cfg.activation!r}; choose from {', '.join(sorted(ACTIVATIONS))}")
    if cfg.layers < 1:
        raise ValueError(f"an mlp head needs layers >= 1, got {cfg.layers}")
    width = cfg.hidden or d_model
    dims = [d_model] + [width] * (cfg.layers - 1) + [1]
    mods: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        mods += [torch.nn.Linear(a, b)] + ([ACTIVATIONS[cfg.activation]()] if i < cfg.layers - 1 else [])
    return Float32Sequential(*mods)


HEADS: dict[str, Callable[[int, RewardHeadConfig], torch.nn.Module]] = {"linear": linear_head, "mlp": mlp_head}


def build_head(d_model: int, cfg: RewardHeadConfig) -> torch.nn.Module:
    """The head `cfg.kind` names; ValueError lists the registered kinds."""
    if cfg.kind not in HEADS:
        raise ValueError(f"unknown reward head {cfg.kind!r}; choose from {', '.join(sorted(HEADS))}")
    return HEADS[cfg.kind](d_model, cfg)


def pair_prompt(record: PairRecord) -> Prompt:
    """The pair's images then its prompt text (image paths are opened here)."""
    images = [im if isinstance(im, Image.Image) else Image.open(im) for im in record.images]
    return Prompt.simple(record.prompt, images)


def _backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The decoder stack without the LM head (`*ForConditionalGeneration.model`); LoRA layers stay in place."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model


def last_token_index(mask_BC: torch.Tensor) -> torch.Tensor:
    """Column of the last 1 in each row of a completion mask (B,); rows must have at least one."""
    assert bool(mask_BC.any(1).all()), "every response needs at least one token"
    cols_BC = torch.arange(mask_BC.shape[1], device=mask_BC.device).expand_as(mask_BC)
    return torch.where(mask_BC.bool(), cols_BC, -1).amax(1)  # (B,)


MODALITY_BUCKETED = ("mllama",)
"""Families whose processor cannot batch text-only prompts with image prompts (Mllama's gives image tensors of
the image rows only, and the forward fails): their rows are scored in one forward per modality."""


def score_encoded(vlm: VLM, head: torch.nn.Module, enc: dict[str, torch.Tensor], ids_BC: torch.Tensor,
                  mask_BC: torch.Tensor, *, length_norm: bool = False) -> torch.Tensor:
    """Scores (B,) of completions `ids_BC` after the encoded prompts `enc`: the fp32 head on the last
    hidden state at each response's last token (its EOS), divided by log(len + 1) with `length_norm`."""
    full = vlm.adapter.extend(enc, ids_BC, mask_BC)
    full.update(vlm.adapter.positions(full))
    vlm.adapter.reset_state(vlm.model)
    hidden_BTH = _backbone(vlm.model)(**full, use_cache=False).last_hidden_state  # (B, P+C, H)
    vlm.adapter.reset_state(vlm.model)
    last_B = enc["input_ids"].shape[1] + last_token_index(mask_BC)  # (B,)
    h_BH = hidden_BTH[torch.arange(len(last_B), device=last_B.device), last_B].float()  # (B, H)
    with torch.autocast(h_BH.device.type, enabled=False):  # bf16-mixed must not run the head in bf16
        r_B = head(h_BH).squeeze(-1)  # (B,)
    return length_normalize(r_B, mask_BC.sum(1), kind="log") if length_norm else r_B


def encode_distinct(vlm: VLM, prompts: Sequence[Prompt], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """`vlm.encode(prompts)`, running the processor once per distinct prompt object (a pair's prompt is scored
    with its chosen and its rejected response): the rows are taken from that encoding, tensor for tensor what
    encoding every row gives (`EncodedPrompts.take`)."""
    slot: dict[int, int] = {}
    rows = [slot.setdefault(id(p), len(slot)) for p in prompts]
    if len(slot) == len(prompts):
        return vlm.encode(list(prompts), device=device)
    distinct = list({id(p): p for p in prompts}.values())
    return encode_prompts(vlm, distinct, device=device).take(vlm.adapter, rows)


def score_texts(vlm: VLM, head: torch.nn.Module, prompts: Sequence[Prompt], responses: Sequence[str], *,
                length_norm: bool = False, device: torch.device | str | None = None) -> torch.Tensor:
    """Differentiable scores (B,) of `responses` to `prompts`: one forward, or one per modality for the
    families in `MODALITY_BUCKETED` (rows keep their order)."""
    def forward(idx: list[int]) -> torch.Tensor:
        enc = encode_distinct(vlm, [prompts[i] for i in idx], device=device)
        ids_BC, mask_BC = vlm.encode_targets([responses[i] for i in idx], device=device)
        return score_encoded(vlm, head, enc, ids_BC, mask_BC, length_norm=length_norm)

    rows = list(range(len(prompts)))
    with_images = [i for i in rows if prompts[i].images]
    if vlm.adapter.name not in MODALITY_BUCKETED or len(with_images) in (0, len(rows)):
        return forward(rows)
    text_only = [i for i in rows if not prompts[i].images]
    order = with_images + text_only
    r_B = torch.cat([forward(with_images), forward(text_only)])  # (B,) in `order`
    return r_B[torch.tensor(order, device=r_B.device).argsort()]  # back to the rows' order


class RewardModelModule(HeldOutEval, L.LightningModule):
    def __init__(self, vlm: VLM, cfg: RewardModelConfig, pairs: Sequence[PairRecord], *, max_steps: int,
                 seed: int = 0, prompt_fn: Callable[[PairRecord], Prompt] = pair_prompt,
                 eval_fn: EvalFn | None = None, eval_records: Sequence[PairRecord] = ()):
        super().__init__()
        self.automatic_optimization = False
        self.vlm, self.policy, self.cfg = vlm, vlm.model, cfg
        self.head = build_head(vlm.model.config.get_text_config().hidden_size, cfg.head).float()
        self.pairs, self.prompt_fn, self.total_steps, self.seed = list(pairs), prompt_fn, max_steps, seed
        # default evaluation: pair accuracy of this model's own scores on `eval_records`
        self.eval_fn = eval_fn or (self.pair_metrics if eval_records else None)
        self.eval_records = list(eval_records)
        # which accuracies the held-out set reports, decided on the whole set (each rank sees a shard)
        self.eval_kinds = {("" if r.images else "text_") for r in self.eval_records}
        self.eval_results: dict[str, dict[str, float]] = {}
        self.step_idx = 0

    def configure_optimizers(self):
        opt, sched = build_optimizer(list(self.parameters()), self.cfg.optim, self.total_steps)
        return [opt], [{"scheduler": sched, "interval": "step"}]

    def on_fit_start(self) -> None:
        self.train()
        self.evaluate_before()

    # ---- scoring -----------------------------------------------------------------------------
    def score_inputs(self, enc: dict[str, torch.Tensor], ids_BC: torch.Tensor, mask_BC: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of completions `ids_BC` after the encoded prompts `enc`."""
        return score_encoded(self.vlm, self.head, enc, ids_BC, mask_BC, length_norm=self.cfg.length_norm)

    def rewards(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> torch.Tensor:
        """Differentiable scores (B,) of `responses` to `prompts` (`score_texts`)."""
        return score_texts(self.vlm, self.head, prompts, responses, length_norm=self.cfg.length_norm,
                           device=self.device)

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], responses: Sequence[str], *, batch_size: int | None = None) -> torch.Tensor:
        """Inference scores (B,) in chunks of `batch_size` rows (default: the micro-batch size)."""
        bs = batch_size or self.cfg.micro_batch_size
        return torch.cat([self.rewards(prompts[i:i + bs], responses[i:i + bs]) for i in range(0, len(prompts), bs)])

    def loss_on(self, batch: Sequence[PairRecord]) -> BTOut:
        prompts = [self.prompt_fn(r) for r in batch]
        r_2B = self.rewards(prompts + prompts, [r.chosen for r in batch] + [r.rejected for r in batch])  # (2B,)
        margin_B = (torch.tensor([float(r.meta.get("margin", 0.0)) for r in batch], device=self.device)
                    if self.cfg.margin else None)
        return bradley_terry_loss(r_2B[:len(batch)], r_2B[len(batch):], margin_B=margin_B,
                                  center_coef=self.cfg.center_coef)

    def pair_metrics(self, vlm: VLM, records: Sequence[PairRecord]) -> dict[str, list[float]]:
        """Per-pair accuracy (chosen scored strictly higher) and margin (chosen − rejected): `accuracy` and
        `margin` over pairs with images, `text_accuracy` and `text_margin` over text-only pairs (each pair
        of metrics present when the held-out set has such pairs)."""
        prompts = [self.prompt_fn(r) for r in records]
        chosen_B = self.score(prompts, [r.chosen for r in records])
        rejected_B = self.score(prompts, [r.rejected for r in records])
        out: dict[str, list[float]] = {f"{k}{m}": [] for k in self.eval_kinds for m in ("accuracy", "margin")}
        for r, c, j in zip(records, chosen_B.tolist(), rejected_B.tolist()):
            kind = "" if r.images else "text_"
            out.setdefault(f"{kind}accuracy", []).append(float(c > j))
            out.setdefault(f"{kind}margin", []).append(c - j)
        return out

    def export_extras(self, model_dir: Path, state: dict[str, torch.Tensor]) -> None:
        """The trained head beside the exported model: `reward_head.safetensors` + `reward_head.json`."""
        from visionrl.core.lit.reward_scorer import write_reward_head

        head = {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
        write_reward_head(model_dir, head, self.cfg.head, self.vlm.model.config.get_text_config().hidden_size,
                          length_norm=self.cfg.length_norm)

    # ---- the step ----------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        idx = records_for_step(len(self.pairs), self.step_idx, self.cfg.batch_size, self.global_rank,
                               self.trainer.world_size, self.seed)
        rows = [self.pairs[i] for i in idx]
        out = accumulate_and_step(self, rows, self.cfg.micro_batch_size, self.loss_on, ("loss", "accuracy", "margin"),
                                  list(self.parameters()), "reward-model")
        log_step(self, {f"train/{k}": v for k, v in out.items()}, self.step_idx)
        self.step_idx += 1

"""What is BaseReward-specific about a training run: the pairs and the reward model's settings, as core's
`Recipe` (`visionrl.core.recipe`); core's runner (RewardModelModule: backbone + fp32 head, Bradley-Terry loss,
held-out pair accuracy before and after, export with the head files) does the rest."""

from __future__ import annotations

from typing import Any

from visionrl.core.hparams import RewardHeadConfig, RewardModelConfig
from visionrl.core.recipe import SHAPES, Method, Recipe, Splits, split_heldout
from visionrl.rewardmodel.config import TrainConfig

PAPER = "2509.16127"


def rm_config(cfg: TrainConfig) -> RewardModelConfig:
    """Core's reward-model settings from the flat flags (head, regularisers, batch, optimiser)."""
    return RewardModelConfig(
        batch_size=cfg.batch_size, micro_batch_size=cfg.micro_batch_size, optim=cfg.optim,
        head=RewardHeadConfig(kind=cfg.head_kind, layers=cfg.head_layers, hidden=cfg.head_hidden,
                              activation=cfg.head_activation),
        center_coef=cfg.center_coef, length_norm=cfg.length_norm)


def recipe(cfg: TrainConfig) -> Recipe:
    head = (f"{cfg.head_layers}-layer MLP, {cfg.head_activation}, width {cfg.head_hidden or 'hidden size'}"
            if cfg.head_kind == "mlp" else "linear")
    loss = "Bradley-Terry, Eq. 1: -log σ(r_w - r_l)"
    if cfg.center_coef:
        loss += f" + {cfg.center_coef}·mean((r_w + r_l)²)"
    card = {"head": f"{head}, fp32, read at the last token of [prompt | response + EOS]",
            "loss": loss + (", r / log(len + 1)" if cfg.length_norm else ""), "data": cfg.run.data}
    return Recipe(cli="rewardmodel-train", method="BaseReward reward model", paper=PAPER,
                  data=lambda: load_splits(cfg, card), build=lambda vlm, splits: build(cfg, splits),
                  hyperparameters=card)


def load_splits(cfg: TrainConfig, card: dict[str, Any] | None = None) -> Splits:
    """Training pairs and the held-out set; the mix's per-source counts go onto the model card (`card`)."""
    from visionrl.rewardmodel import demo_data as D

    ds = cfg.dataset
    if cfg.run.data == SHAPES:
        train = D.demo_pairs(ds.shapes_train_size, ds.text_fraction, D.TRAIN_WORLD)
        train = train[: ds.limit] if ds.limit else train
        held = D.image_pairs(ds.eval_size, D.HELDOUT_WORLD) + D.text_pairs(ds.text_eval_size, D.HELDOUT_WORLD)
        if card is not None:
            n_text = sum(not r.images for r in train)
            card["data mix (pairs)"] = {"shapes image pairs": len(train) - n_text, "procedural text pairs": n_text}
        return Splits(train, held)

    def read(spec: str) -> list[Any]:
        pairs, report = read_mix(spec, cfg)
        if card is not None and spec == cfg.run.data:
            card["data mix (pairs read / kept)"] = {k: f"{report.read[k]} / {report.kept[k]}" for k in report.read}
        return pairs

    return split_heldout(cfg.run.data, ds, read=read, shapes_train=lambda n: [], shapes_heldout=lambda n: [])


def read_mix(spec: str, cfg: TrainConfig) -> tuple[list[Any], Any]:
    """The mixed pairs of the sources `spec` names, with `--dataset.caps`/`--dataset.weights` applied."""
    from visionrl.rewardmodel.mixer import mix, parse_spec
    from visionrl.rewardmodel.sources import open_source, parse_sources

    streams = [(s.name, open_source(s, path)) for s, path in parse_sources(spec)]
    return mix(streams, caps=parse_spec(cfg.dataset.caps, integer=True),
               weights=parse_spec(cfg.dataset.weights, integer=False), seed=cfg.run.seed)


def build(cfg: TrainConfig, splits: Splits) -> Method:
    from visionrl.rewardmodel.images import pair_prompt

    benchmark = SHAPES if cfg.run.data == SHAPES else "heldout"
    return Method(train=splits.train, heldout=splits.heldout, prompt_fn=pair_prompt, benchmark=benchmark)

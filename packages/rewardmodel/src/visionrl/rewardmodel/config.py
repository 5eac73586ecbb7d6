"""BaseReward configuration: `rewardmodel-train` and `rewardmodel-eval` flags and their presets.

Departures from the paper (arXiv 2509.16127), numbered (README "Departures"):
1. Unstated in the paper, set as basereward.md recommends [R]: head width = the backbone's hidden size, the score
   read at the last non-pad token of [prompt | response + EOS], one epoch, cosine schedule with 3 % warm-up,
   vision tower frozen (merger trained), data concatenated and shuffled (`--dataset.caps`/`weights` change it).
2. The paper presets train in `bf16-mixed` (fp32 master weights, bf16 matmuls): the fp32 head then shares one
   dtype with the backbone under FSDP; "bf16" is all the paper says.
3. The `demo` preset runs on the embedded tiny backbone (shapes image pairs + procedural text pairs, lr 1e-4
   cosine to 1e-5, 400 steps of 32 pairs), which learns in minutes on a CPU; the paper's lr 3e-6 does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from visionrl.core.checks import NON_NEGATIVE, POSITIVE, Checked, Range
from visionrl.core.config import DataArgs, EvalArgs, FlatEvalArgs, FlatRunArgs, RunArgs
from visionrl.core.hparams import HeadKind, LoadOptions, OptimConfig
from visionrl.rewardmodel.mixer import spec_problems

HeadActivation = Literal["none", "tanh", "relu", "silu"]
"""Table 2's activations (none, Tanh, SiLU) and the ReLU the text names."""
Sweep = Literal["none", "heads", "reg"]
Ensemble = Literal["mean", "accuracy", "margin"]


@dataclass(frozen=True)
class MixArgs(DataArgs):
    """Training pairs: `--data` names the sources (`shapes`, `basereward`, or SOURCE[=PATH],...); caps and
    weights shape the mix."""

    RANGES: ClassVar[dict[str, Range]] = {**DataArgs.RANGES, "text_fraction": Range(0, 1, hi_open=True),
                                          "text_eval_size": NON_NEGATIVE}

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from spec_problems(self.caps, "caps", integer=True)
        yield from spec_problems(self.weights, "weights", integer=False)

    caps: tuple[str, ...] = ()
    """SOURCE=N: read at most N pairs of SOURCE (its stream stops there; N >= 0), e.g. mmpr=100000."""
    weights: tuple[str, ...] = ()
    """SOURCE=W: keep W times the source's pairs (W < 1: a seeded subset, W > 1: repeats; W >= 0, default 1)."""
    text_fraction: float = 0.3
    """`--data shapes`: share of procedural text-only pairs among the training pairs, in [0, 1)."""
    text_eval_size: int = 100
    """`--data shapes`: held-out text pairs, reported as `text_accuracy` (the image pairs: `--dataset.eval-size`)."""


@dataclass(frozen=True)
class TrainConfig(Checked):
    """BaseReward reward-model training (arXiv 2509.16127): a VLM + scalar head, Bradley-Terry loss (Eq. 1)."""

    RANGES: ClassVar[dict[str, Range]] = {"head_layers": POSITIVE, "head_hidden": POSITIVE,
                                          "center_coef": NON_NEGATIVE, "batch_size": POSITIVE,
                                          "micro_batch_size": POSITIVE}

    run: FlatRunArgs
    head_kind: HeadKind = "mlp"
    """`mlp` (the paper's) or `linear` (one projection, Naive-RM)."""
    head_layers: int = 2
    """Linear layers of the MLP head, the output layer included (Table 2: 1-5; the paper's 2)."""
    head_hidden: int | None = None
    """Width of the head's hidden layers; None = the backbone's hidden size."""
    head_activation: HeadActivation = "silu"
    """Between the head's layers: none, tanh, relu or silu (the paper's)."""
    center_coef: float = 0.0
    """λ of the zero-coefficient regulariser λ·mean((r_w + r_l)²) (Algorithm 1; the paper's final recipe: 0)."""
    length_norm: bool = False
    """Length normalisation r / log(len + 1) (Algorithm 1; rejected by the paper, off)."""
    batch_size: int = 32
    """Preference pairs per optimiser step and device (paper: 128 over all devices)."""
    micro_batch_size: int = 32
    """Pairs per forward/backward (each pair is two sequences)."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-6, schedule="cosine"))
    load: LoadOptions = field(default_factory=LoadOptions)
    dataset: MixArgs = field(default_factory=MixArgs)
    sweep: Sweep = "none"
    """Run a grid instead of one model, each cell into <output-dir>/<cell>/, with ablation.json/.md: `heads`
    (Table 2's layer/activation grid) or `reg` (λ in 0, 0.001, 0.01, 0.1 and length normalisation)."""


_DEMO_OPTIM = OptimConfig(lr=1e-4, weight_decay=0.0, warmup_steps=20, schedule="cosine", min_lr_ratio=0.1,
                          max_grad_norm=1.0)
_DEMO_DATA = MixArgs(eval_size=200, text_eval_size=100, shapes_train_size=3000, text_fraction=0.3)


def _demo(max_steps: int, out: str, sweep: Sweep = "none") -> TrainConfig:
    return TrainConfig(run=RunArgs(max_steps=max_steps, save_every_n_steps=max(1, max_steps // 2), threads=1,
                                   output_dir=Path(out)),
                       batch_size=32, micro_batch_size=32, optim=_DEMO_OPTIM, dataset=_DEMO_DATA, sweep=sweep)


# Paper settings (basereward.md §1.7): lr 3e-6 (grid 1e-5/3e-6/1e-6/3e-7), global batch 128 (64 GPUs × 2),
# 2.8M pairs = 21,875 steps for the one epoch [R], cosine with 3 % warm-up [R], frozen vision tower [R].
_PAPER_STEPS = 2_800_000 // 128


def _paper(model: str, out: str) -> TrainConfig:
    return TrainConfig(
        run=RunArgs(model=model, data="basereward", max_steps=_PAPER_STEPS, devices=8, num_nodes=8, strategy="fsdp",
                    precision="bf16-mixed", accelerator="gpu", save_every_n_steps=1000, output_dir=Path(out)),
        batch_size=2, micro_batch_size=2,
        optim=OptimConfig(lr=3e-6, weight_decay=0.0, warmup_steps=round(0.03 * _PAPER_STEPS), schedule="cosine",
                          min_lr_ratio=0.0, max_grad_norm=1.0),
        load=LoadOptions(dtype="float32", freeze_vision=True, gradient_checkpointing=True),
        dataset=MixArgs(eval_size=1000, text_eval_size=0))


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "demo": _demo(400, "outputs/rewardmodel-demo"),
    "paper-7b": _paper("Qwen/Qwen2.5-VL-7B-Instruct", "outputs/rewardmodel-qwen2.5vl-7b"),
    "paper-7b-qwen2vl": _paper("Qwen/Qwen2-VL-7B-Instruct", "outputs/rewardmodel-qwen2vl-7b"),
    "ablation-heads": _demo(200, "outputs/rewardmodel-ablation-heads", "heads"),
    "ablation-reg": _demo(200, "outputs/rewardmodel-ablation-reg", "reg"),
}


@dataclass(frozen=True)
class EvalConfig(Checked):
    """Score reward models on pairwise benchmarks; with several, their ensembles too."""

    RANGES: ClassVar[dict[str, Range]] = {"validation_size": POSITIVE}

    eval: FlatEvalArgs
    models: tuple[str, ...] = ()
    """Further reward-model folders, scored like --model; with two or more models the ensembles are scored too."""
    ensembles: tuple[Ensemble, ...] = ("mean", "accuracy", "margin")
    """Ensembles of all models: mean (raw scores), accuracy- or margin-weighted (weights from the validation set)."""
    validation: str = "shapes"
    """Pairs the weighted ensembles learn their weights on: `shapes` or a training-data spec like --data of
    rewardmodel-train (sampled uniformly over its sources)."""
    validation_size: int = 1000
    """Validation pairs (paper: 1,000 sampled uniformly from the training sources)."""
    text_model: str | None = None
    """Modality router: text-only pairs go to this reward model, pairs with images to the others."""
    rewardbench: str | None = None
    """Optional text set in RewardBench format (prompt, chosen, rejected, subset): a folder, file or hub id."""
    rmbench: str | None = None
    """Optional text set in RM-Bench format (prompt, chosen[3], rejected[3], domain)."""


EVAL_PRESETS: dict[str, EvalConfig] = {
    "demo": EvalConfig(eval=EvalArgs(model="outputs/rewardmodel-demo/model", data="shapes",
                                     output_dir=Path("outputs/rewardmodel-eval"), batch_size=32),
                       validation_size=200),
    "paper": EvalConfig(eval=EvalArgs(model="outputs/rewardmodel-qwen2.5vl-7b/model",
                                      data="vlrewardbench,mmrlhf", output_dir=Path("outputs/rewardmodel-eval"),
                                      batch_size=8),
                        models=("outputs/rewardmodel-qwen2vl-7b/model",), validation="basereward"),
}

"""`selfreward-eval`: greedy evaluation of a checkpoint, rule-based grading, an optional LLM judge,
and the Language Shortcut Rate (LSR, Vision-SR1 v2 §3.3.3).

Per item: generate greedily with the See-Think (or CoT) prompt; correct if the last `\\boxed{}` grades
equal to the reference (mathruler semantics); otherwise, when a judge is given, ask it with the
paper's judge prompt and count the item correct iff "incorrect" is not in its judgment.

LSR = #{ final answer correct AND description not self-contained } / #{ items }, where the description
is self-contained iff the judge, given only the description and the question (Caption-Reasoner
prompt), answers correctly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro
from visionrl.core.cli import parse_config, prepare_output_dir, run_cli
from visionrl.core.config import EvalArgs
from visionrl.core.errors import UserError

Judge = Callable[[Sequence[str]], list[str]]
"""A text judge: prompts in, generated texts out (greedy or the paper's judge sampling)."""


@dataclass(frozen=True)
class EvalConfig:
    """Vision-SR1 evaluation."""

    eval: Annotated[EvalArgs, tyro.conf.OmitArgPrefixes]
    prompt: Literal["see_think", "cot"] = "see_think"
    """See-Think for SR1 models, CoT for the Vision-R1 baseline."""
    judge: str | None = None
    """LLM judge for answers the rules reject and for LSR: a hub id or local dir (text or VLM), `self`
    (the evaluated model, text only), or None (rules only; LSR then uses `self`)."""
    lsr: bool = True
    """Compute the Language Shortcut Rate (See-Think prompt only)."""
    strict_description: bool = True
    """Missing <description> tags give an empty description (off = the whole response)."""
    max_new_tokens: int = 256
    judge_max_new_tokens: int = 256
    split: str = "test"
    question_column: str = "problem"
    answer_column: str = "answer"
    images_column: str = "images"
    literal_backslash_n: bool = True


PRESETS = {"demo": EvalConfig(eval=EvalArgs(model="demo", data="shapes", output_dir=Path("outputs/selfreward-eval"),
                                            limit=200, batch_size=64), max_new_tokens=64, judge_max_new_tokens=64),
           "paper": EvalConfig(eval=EvalArgs(model="LMMs-Lab-Turtle/SelfRewarded-R1-7B", data="zli12321/MMMU",
                                             output_dir=Path("outputs/selfreward-eval"), batch_size=16),
                               max_new_tokens=4096, judge_max_new_tokens=2048)}


# ---- pure metrics ------------------------------------------------------------------------------
def judge_says_correct(judgment: str) -> bool:
    """The official rule: correct iff "incorrect" does not occur in the judgment (case-insensitive).

    >>> judge_says_correct("<judgment>Correct</judgment>"), judge_says_correct("INCORRECT")
    (True, False)
    """
    return "incorrect" not in judgment.lower()


def language_shortcut_rate(final_correct: Sequence[bool], self_contained: Sequence[bool]) -> float:
    """Fraction of items answered correctly although their description alone does not lead to the answer.

    >>> language_shortcut_rate([True, True, False, True], [True, False, False, False])
    0.5
    """
    assert len(final_correct) == len(self_contained), "one self-containment verdict per item"
    if not final_correct:
        return float("nan")
    return sum(c and not s for c, s in zip(final_correct, self_contained)) / len(final_correct)


def weighted_average(results: dict[str, tuple[float, int]]) -> float:
    """Count-weighted mean of per-split accuracies (how MMMU-Pro's 10-option and vision splits merge).

    >>> weighted_average({"10opt": (0.5, 100), "vision": (0.2, 300)})
    0.275
    """
    total = sum(n for _, n in results.values())
    return sum(a * n for a, n in results.values()) / total if total else float("nan")


@dataclass
class ItemResult:
    id: str
    question: str
    answer: str
    prediction: str
    rule_correct: bool
    correct: bool
    judgment: str | None = None
    description: str | None = None
    description_answer: str | None = None
    self_contained: bool | None = None


def score_items(records: Sequence[Any], predictions: Sequence[str], *, judge: Judge | None,
                lsr_judge: Judge | None, strict_description: bool = True) -> list[ItemResult]:
    """Grade predictions: rules first, then the judge for the rest; LSR verdicts when `lsr_judge`."""
    from visionrl.core.rewards import extract_boxed, grade_answer
    from visionrl.selfreward.prompts import caption_reasoner_prompt, judge_prompt
    from visionrl.selfreward.rewards import extract_description

    items = []
    for rec, pred in zip(records, predictions):
        ok = grade_answer(extract_boxed(pred), str(rec.answer))
        items.append(ItemResult(rec.id, rec.question, str(rec.answer), pred, ok, ok))
    todo = [it for it in items if not it.rule_correct]
    if judge is not None and todo:
        verdicts = judge([judge_prompt(it.question, it.answer, extract_boxed(it.prediction)) for it in todo])
        for it, v in zip(todo, verdicts):
            it.judgment, it.correct = v, judge_says_correct(v)
    if lsr_judge is not None:
        for it in items:
            it.description = extract_description(it.prediction, strict_description)
        answers = lsr_judge([caption_reasoner_prompt(it.description, it.question) for it in items])
        for it, a in zip(items, answers):
            it.description_answer = a
            it.self_contained = bool(it.description) and grade_answer(extract_boxed(a), it.answer)
    return items


def summarize(items: Sequence[ItemResult], benchmark: str, prompt: str = "see_think") -> dict[str, float]:
    from visionrl.core.rewards import cot_format, see_think_format

    fmt = see_think_format if prompt == "see_think" else cot_format
    n = max(1, len(items))
    out = {f"eval/{benchmark}/accuracy": sum(it.correct for it in items) / n,
           f"eval/{benchmark}/rule_accuracy": sum(it.rule_correct for it in items) / n,
           f"eval/{benchmark}/format": sum(fmt(it.prediction) for it in items) / n,
           f"eval/{benchmark}/n": float(len(items))}
    if items and items[0].self_contained is not None:
        out[f"eval/{benchmark}/lsr"] = language_shortcut_rate([it.correct for it in items],
                                                              [bool(it.self_contained) for it in items])
        out[f"eval/{benchmark}/self_contained"] = sum(bool(it.self_contained) for it in items) / n
    return out


# ---- the CLI -----------------------------------------------------------------------------------
def text_judge(vlm: Any, max_new_tokens: int, batch_size: int, *, paper_sampling: bool) -> Judge:
    """A judge backed by any VLM/LLM through the core wrapper (text-only prompts)."""
    from visionrl.core.chat import Prompt
    from visionrl.core.rollout import SamplingParams, generate_texts

    # Official judge settings: temperature 0.4, top_p 0.4, top_k 32; greedy for the self-judge demo.
    sampling = (SamplingParams(do_sample=True, temperature=0.4, top_p=0.4, top_k=32, max_new_tokens=max_new_tokens)
                if paper_sampling else SamplingParams(do_sample=False, max_new_tokens=max_new_tokens))
    return lambda prompts: generate_texts(vlm, [Prompt([p]) for p in prompts], sampling, batch_size=batch_size)


def load_benchmark(cfg: EvalConfig) -> tuple[str, list[Any]]:
    from visionrl.core.data.loaders import load_records
    from visionrl.core.demo import heldout_records

    e = cfg.eval
    if e.data == "shapes":
        return "shapes", heldout_records(e.limit or 200)
    columns = {"question": cfg.question_column, "answer": cfg.answer_column, "images": cfg.images_column}
    return Path(e.data).name or e.data, load_records(e.data, "vqa", columns=columns, split=cfg.split, limit=e.limit)


def run_eval(cfg: EvalConfig, *, judge: Judge | None = None, lsr_judge: Judge | None = None) -> dict[str, float]:
    import torch
    from visionrl.core.config import RunArgs
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.core.runner import load_policy
    from visionrl.selfreward.prompts import cot_prompt, see_think_prompt

    torch.manual_seed(cfg.eval.seed)
    out = prepare_output_dir(cfg.eval, cfg)
    name, records = load_benchmark(cfg)
    vlm = load_policy(RunArgs(model=cfg.eval.model, max_steps=1), None)
    vlm.model.eval()
    make = (lambda r: see_think_prompt(r.question, list(r.images), literal_backslash_n=cfg.literal_backslash_n)) \
        if cfg.prompt == "see_think" else (lambda r: cot_prompt(r.question, list(r.images)))
    preds = generate_texts(vlm, [make(r) for r in records], SamplingParams(do_sample=False, max_new_tokens=cfg.max_new_tokens),
                           batch_size=cfg.eval.batch_size)
    if judge is None and cfg.judge is not None:
        jvlm = vlm if cfg.judge == "self" else load_policy(RunArgs(model=cfg.judge, max_steps=1), None)
        judge = text_judge(jvlm, cfg.judge_max_new_tokens, cfg.eval.batch_size, paper_sampling=cfg.judge != "self")
    if lsr_judge is None and cfg.lsr and cfg.prompt == "see_think":
        lsr_judge = judge or text_judge(vlm, cfg.judge_max_new_tokens, cfg.eval.batch_size, paper_sampling=False)
    items = score_items(records, preds, judge=judge, lsr_judge=lsr_judge if cfg.lsr else None,
                        strict_description=cfg.strict_description)
    metrics = summarize(items, name, cfg.prompt)
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it.__dict__, ensure_ascii=False) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def _main(args: list[str] | None = None) -> None:
    cfg = parse_config(EvalConfig, PRESETS, args=args, prog="selfreward-eval",
                       description="Evaluate a checkpoint the Vision-SR1 way: accuracy, LLM judge, Language Shortcut Rate.")
    if cfg.eval.limit is not None and cfg.eval.limit <= 0:
        raise UserError("--limit must be positive")
    if cfg.eval.batch_size <= 0:
        raise UserError("--batch-size must be positive")
    metrics = run_eval(cfg)
    print(json.dumps(metrics, indent=2, sort_keys=True))


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()

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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from visionrl.selfreward.config import EvalConfig

Judge = Callable[[Sequence[str]], list[str]]
"""A text judge: prompts in, generated texts out (a `visionrl.core.evaluation.judges.GenerativeJudge`)."""


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


# ---- the run ------------------------------------------------------------------------------------
# Official judge sampling (temperature 0.4, top_p 0.4, top_k 32); the self-judge of the demo is greedy.
PAPER_JUDGE_SAMPLING = {"do_sample": True, "temperature": 0.4, "top_p": 0.4, "top_k": 32}


def text_judge(vlm: Any, name: str, max_new_tokens: int, batch_size: int, *, paper_sampling: bool) -> Judge:
    """A judge backed by any VLM/LLM through core's judge home (text-only prompts, cached)."""
    from visionrl.core.chat import Prompt
    from visionrl.core.evaluation.judges import GenerativeJudge
    from visionrl.core.hparams import SamplingParams

    sampling = SamplingParams(max_new_tokens=max_new_tokens,
                              **(PAPER_JUDGE_SAMPLING if paper_sampling else {"do_sample": False}))
    return GenerativeJudge(vlm, name=name, render=lambda p: Prompt([p]), parse=lambda text, _: text,
                           sampling=sampling, batch_size=batch_size)


def load_benchmark(cfg: EvalConfig) -> tuple[str, list[Any]]:
    from visionrl.core.data.loaders import load_records
    from visionrl.core.demo_teacher import heldout_records

    e = cfg.eval
    if e.data == "shapes":
        return "shapes", heldout_records(e.limit or 200)
    columns = {"question": cfg.question_column, "answer": cfg.answer_column, "images": cfg.images_column}
    return Path(e.data).name or e.data, load_records(e.data, "vqa", columns=columns, split=cfg.split, limit=e.limit)


def run_eval(cfg: EvalConfig, *, judge: Judge | None = None, lsr_judge: Judge | None = None) -> dict[str, float]:
    """Load data, model and judge (checked before anything loads), grade, write metrics.json,
    predictions.jsonl and config.yaml together; returns the metrics."""
    import torch
    from visionrl.core.console import Console, one_metric_line
    from visionrl.core.data.lengths import check_prompt_lengths
    from visionrl.core.evaluation.judges import check_judge_specs, resolve_judge
    from visionrl.core.evaluation.models import check_model_source, eval_model
    from visionrl.core.evaluation.outputs import write_results
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.selfreward.prompts import cot_prompt, see_think_prompt

    e = cfg.eval
    console = Console("selfreward-eval", quiet=e.quiet, verbose=e.verbose)
    console.quiet_libraries()
    check_model_source(e.model)
    check_judge_specs([cfg.judge] if cfg.judge else [], "--judge")
    console.header(f"Vision-SR1 evaluation ({cfg.prompt})", {"model": e.model, "data": e.data,
                                                             "judge": cfg.judge}, e.output_dir)
    torch.manual_seed(e.seed)
    name, records = load_benchmark(cfg)
    vlm = eval_model(e.model)
    make = (lambda r: see_think_prompt(r.question, list(r.images), literal_backslash_n=cfg.literal_backslash_n)) \
        if cfg.prompt == "see_think" else (lambda r: cot_prompt(r.question, list(r.images)))
    records, dropped, _ = check_prompt_lengths(vlm, records, make, limit=e.max_prompt_tokens,
                                               policy=e.overlong_prompts, what="benchmark")
    with console.bar(f"generate {name}", total=len(records), unit=" prompts"):
        preds = generate_texts(vlm, [make(r) for r in records],
                               SamplingParams(do_sample=False, max_new_tokens=cfg.max_new_tokens),
                               batch_size=e.batch_size)

    def make_judge(jvlm: Any, jname: str) -> Judge:
        return text_judge(jvlm, jname, cfg.judge_max_new_tokens, cfg.eval.batch_size, paper_sampling=jname != "self")

    if judge is None and cfg.judge is not None:
        judge = resolve_judge(cfg.judge, flag="--judge", evaluated=vlm, make=make_judge)
    if lsr_judge is None and cfg.lsr and cfg.prompt == "see_think":
        lsr_judge = judge or make_judge(vlm, "self")
    with console.bar("judge", unit=" prompts"):
        items = score_items(records, preds, judge=judge, lsr_judge=lsr_judge if cfg.lsr else None,
                            strict_description=cfg.strict_description)
    metrics = summarize(items, name, cfg.prompt)
    if dropped:
        metrics[f"eval/{name}/dropped_overlong"] = float(dropped)
    paths = write_results(e.output_dir, cfg, metrics, [asdict(it) for it in items])
    shown = {k.rsplit("/", 1)[-1]: v for k, v in metrics.items() if k.rsplit("/", 1)[-1] in SUMMARY_KEYS}
    console.summary([(name, one_metric_line(shown, list(SUMMARY_KEYS))), ("metrics", str(paths["metrics"])),
                     ("predictions", str(paths["predictions"]))])
    return metrics


SUMMARY_KEYS = ("accuracy", "rule_accuracy", "format", "lsr", "n")

"""One judge protocol for every package: items in, verdicts out, with a name to report them under.

A judge is any object with a `name` and `__call__(items) -> list[verdict]`. The three kinds the packages
need, chosen by one flag value (`resolve_judge`):

- `rule`: a pure function of the item (the package supplies it; e.g. robustness reads the letter a
  reasoning concludes, selfreward has none);
- `self`: the evaluated (or trained) model itself, prompted as a judge;
- anything else: a local model folder or hub id, loaded once per name (`load_model`, errors name the flag).

Model-backed judges are `GenerativeJudge`s: the package renders each item into a `Prompt` and parses the
generated text into its verdict type; text-only prompts are cached, so judging the same text twice (a GRPO
group with duplicate completions, a periodic evaluation) generates once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from visionrl.core.errors import UserError

if TYPE_CHECKING:
    from visionrl.core.chat import Prompt
    from visionrl.core.hparams import SamplingParams
    from visionrl.core.vlm.model import VLM

ItemT = TypeVar("ItemT", contravariant=True)
VerdictT = TypeVar("VerdictT", covariant=True)
I = TypeVar("I")  # noqa: E741
V = TypeVar("V")


class Judge(Protocol[ItemT, VerdictT]):
    name: str

    def __call__(self, items: Sequence[ItemT]) -> list[VerdictT]: ...


class GenerativeJudge(Generic[I, V]):
    """A model prompted as a judge: `render(item) -> Prompt`, generate, `parse(text, item) -> verdict`."""

    def __init__(self, vlm: VLM, *, name: str, render: Callable[[I], Prompt], parse: Callable[[str, I], V],
                 sampling: SamplingParams, batch_size: int = 16, engine: str = "hf"):
        self.vlm, self.name, self.render, self.parse = vlm, name, render, parse
        self.sampling, self.batch_size, self.engine = sampling, batch_size, engine
        self.cache: dict[tuple[str, ...], str] = {}
        self.calls = 0
        """Generations run so far (cache hits excluded): what a judged benchmark reports as its cost."""

    def __call__(self, items: Sequence[I]) -> list[V]:
        from visionrl.core.rollout import generate_texts

        prompts = [self.render(it) for it in items]
        keys = [_cache_key(p) for p in prompts]
        fresh, pending = [], set()  # generate uncacheable prompts and the first of each uncached text
        for i, k in enumerate(keys):
            if k is None or (k not in self.cache and k not in pending):
                fresh.append(i)
                pending.add(k)
        texts: list[str | None] = [None] * len(items)
        if fresh:
            generated = generate_texts(self.vlm, [prompts[i] for i in fresh], self.sampling,
                                       batch_size=self.batch_size, engine=self.engine)
            self.calls += len(fresh)
            for i, t in zip(fresh, generated):
                texts[i] = t
                if keys[i] is not None:
                    self.cache[keys[i]] = t
        return [self.parse(t if t is not None else self.cache[k], it) for t, k, it in zip(texts, keys, items)]


def _cache_key(prompt: Prompt) -> tuple[str, ...] | None:
    """Text-only prompts are cached by their text; prompts with images are not cached."""
    return None if prompt.images else (prompt.system or "", prompt.prefill, *map(str, prompt.content))


def resolve_judge(spec: str, *, flag: str, evaluated: VLM | None, make: Callable[[VLM, str], Judge[Any, Any]],
                  rule: Judge[Any, Any] | None = None, loaded: dict[str, VLM] | None = None) -> Judge[Any, Any]:
    """The judge a flag value names: `rule`, `self`, or a model (loaded once per name into `loaded`)."""
    from visionrl.core.evaluation.models import load_model

    if spec == "rule":
        if rule is None:
            raise UserError(f"{flag} rule: this evaluation has no rule judge; pass self or a model")
        return rule
    if spec == "self":
        if evaluated is None:
            raise UserError(f"{flag} self: there is no evaluated model to judge with")
        return make(evaluated, "self")
    cache = loaded if loaded is not None else {}
    if spec not in cache:
        cache[spec] = load_model(spec, flag=flag)
        cache[spec].model.eval()
    return make(cache[spec], spec)


def check_judge_specs(specs: Sequence[str], flag: str) -> None:
    """Cheap checks of judge flag values before any model loads (a model judge must look like one)."""
    from visionrl.core.evaluation.models import check_model_source

    for spec in specs:
        if spec not in ("rule", "self"):
            check_model_source(spec, flag)

"""BaseReward's training sources (arXiv 2509.16127 Table 3) as streams of `PairRecord`s.

| source        | format read                                                  | hub id (default)                       | paper |
|---------------|--------------------------------------------------------------|----------------------------------------|-------|
| `rlaif-v`     | question, chosen, rejected, image                            | openbmb/RLAIF-V-Dataset                | 83k   |
| `mmpr`        | meta.json + annotations (jsonl, zip) + images.zip_* parts     | OpenGVLab/MMPR-v1.2 (local copy only)  | 2M    |
| `r1-reward`   | message (the evaluator prompt with both responses), answer    | yifanzhang114/R1-Reward-RL             | 200k  |
| `tulu3`       | prompt, chosen/rejected message lists                         | allenai/tulu-3-IF-augmented-on-policy-70b | 65k |
| `olmo2`       | chosen/rejected message lists                                 | allenai/olmo-2-0425-1b-preference-mix  | 378k  |
| `ultra-hard`  | UltraFeedback: the pairs with the largest score gap          | HuggingFaceH4/ultrafeedback_binarized  | 63k   |
| `others`      | any chat or question pair (WildChat-ultrafeedback, ...)      | (local)                                | 63k   |
| `mmif`, `omni-align` | question, chosen, rejected, image (rejected by the paper) | (local), PhoenixZ/OmniAlign-V-DPO   |       |
| `ultra-all`   | UltraFeedback, every pair (rejected)                          | HuggingFaceH4/ultrafeedback_binarized  | 300k  |
| `shp`         | history, human_ref_A/B, labels (rejected)                     | stanfordnlp/SHP                        | 348k  |

`basereward` names the paper's final 7-dataset mix, `basereward-rejected` the four rejected sets. A source reads
from its hub id, or from `SOURCE=PATH` (a local folder or file in the same format). Bad rows raise `DataError`
naming the file and row; images become references loaded at use (`images.py`). Departures, numbered:

1. The R1-Reward SFT set (200k) is not public; `r1-reward` reads the released RL set's format (the evaluator
   prompt holds both responses, `answer` names the better one), which a local copy of the SFT set would share.
2. A multi-turn chat pair keeps the earlier turns in the user message ("User: ... Assistant: ...").
3. MMPR's `repeat_time` is not applied (cap or weight the source instead).
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.core.data.validate import DataError, Where
from visionrl.core.errors import UserError
from visionrl.rewardmodel.images import BytesImage, FileImage, TableImage, ZipImage, find_member, open_archive

Adapter = Callable[[dict[str, Any], Where, Callable[[Any, Where], list[Any]]], PairRecord | None]


# ---- fields --------------------------------------------------------------------------------------------
def _text(row: dict[str, Any], keys: tuple[str, ...], where: Where) -> str:
    for key in keys:
        if key in row and row[key] is not None:
            value = row[key]
            if not isinstance(value, str) or not value.strip():
                raise where.error(f"field {key!r} is empty or not text")
            return value
    raise where.error(f"field {keys[0]!r} is missing")


def _messages(value: Any, key: str, where: Where) -> list[dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise where.error(f"field {key!r} is text but not a JSON message list") from None
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        raise where.error(f"field {key!r} must be a non-empty list of messages")
    return value


def _is_message_list(text: str) -> bool:
    """Whether a text field holds a JSON message list (Parquet exports store lists as JSON text)."""
    if not text.lstrip().startswith("["):
        return False
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _content(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, list):  # multimodal message parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _history(messages: list[dict[str, Any]]) -> str:
    """The turns before the final answer as one user message (departure 2)."""
    if len(messages) == 1:
        return _content(messages[0])
    return "\n".join(f"{m.get('role', 'user').capitalize()}: {_content(m)}" for m in messages)


def _pair(rid: str, images: list[Any], prompt: str, chosen: str, rejected: str, category: str, where: Where,
          meta: dict[str, Any] | None = None) -> PairRecord:
    for name, text in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not text.strip():
            raise where.error(f"{name} is empty")
    return PairRecord(rid, images, prompt, chosen, rejected, category, meta=dict(meta or {}))


# ---- adapters: one raw row -> one pair -------------------------------------------------------------------
def question_pair(row: dict[str, Any], where: Where, images: Callable[[Any, Where], list[Any]]) -> PairRecord:
    """RLAIF-V, MMPR, OmniAlign-V-DPO, MMIF: `question`/`prompt`, `chosen`, `rejected`, `image`/`images`."""
    prompt = _text(row, ("question", "prompt", "query"), where).replace("<image>", "").strip()
    chosen, rejected = _text(row, ("chosen",), where), _text(row, ("rejected",), where)
    value = row.get("image", row.get("images"))
    return _pair(str(row.get("idx", row.get("id", where.row))), images(value, where), prompt, chosen, rejected,
                 str(row.get("ds_name", "")), where)


_R1_RESPONSE = re.compile(r"\[Response 1\]:\s*\n(?P<one>.*?)\s*\n+#+\s*\[Response 2\]:\s*\n(?P<two>.*?)\s*\n+#+ ",
                          re.DOTALL)


def r1_reward_pair(row: dict[str, Any], where: Where, images: Callable[[Any, Where], list[Any]]) -> PairRecord:
    """R1-Reward: the two responses sit in the evaluator prompt of `message`; `answer` ("<answer>2</answer>")
    names the better one; `question` is the user's question, `image` its image."""
    messages = _messages(row.get("message"), "message", where)
    text = "".join(_content(m) for m in messages)
    found = _R1_RESPONSE.search(text)
    if found is None:
        raise where.error("field 'message' holds no '[Response 1]:' / '[Response 2]:' sections")
    answer = row.get("answer")
    answer = answer[0] if isinstance(answer, list) and answer else answer
    choice = re.search(r"[12]", str(answer or ""))
    if choice is None:
        raise where.error(f"field 'answer' must name response 1 or 2, got {answer!r}")
    one, two = found.group("one"), found.group("two")
    chosen, rejected = (one, two) if choice.group(0) == "1" else (two, one)
    image = row.get("image") or next((p.get("image") for m in messages if isinstance(m.get("content"), list)
                                      for p in m["content"] if isinstance(p, dict) and p.get("type") == "image"), None)
    return _pair(str(row.get("id", where.row)), images(image, where), _text(row, ("question",), where), chosen,
                 rejected, "r1-reward", where)


def chat_pair(row: dict[str, Any], where: Where, images: Callable[[Any, Where], list[Any]]) -> PairRecord:
    """Tulu-3, OLMo-2, UltraFeedback, WildChat: `chosen`/`rejected` as texts or message lists (ending with the
    answer), the prompt from `prompt` or the turns before the answer; UltraFeedback's score gap kept in meta."""
    answers, history = [], None
    for key in ("chosen", "rejected"):
        value = row.get(key)
        if isinstance(value, str) and not _is_message_list(value):
            answers.append(_text(row, (key,), where))
            continue
        msgs = _messages(value, key, where)
        if msgs[-1].get("role") != "assistant":
            raise where.error(f"field {key!r} must end with the assistant's answer")
        answers.append(_content(msgs[-1]))
        history = history or (msgs[:-1] or None)
    prompt = row.get("prompt") if isinstance(row.get("prompt"), str) and row["prompt"].strip() else None
    if prompt is None and history is None:
        raise where.error("no prompt: neither a 'prompt' field nor turns before the answers")
    meta = {}
    if isinstance(row.get("score_chosen"), int | float) and isinstance(row.get("score_rejected"), int | float):
        meta["gap"] = float(row["score_chosen"]) - float(row["score_rejected"])
    prompt_text = _history(history) if history and (len(history) > 1 or prompt is None) else prompt
    return _pair(str(row.get("id", row.get("prompt_id", where.row))), [], str(prompt_text), answers[0], answers[1],
                 str(row.get("source", "")), where, meta)


def shp_pair(row: dict[str, Any], where: Where, images: Callable[[Any, Where], list[Any]]) -> PairRecord:
    """SHP: `history` (the post), `human_ref_A`/`human_ref_B`, `labels` 1 = A preferred."""
    a, b = _text(row, ("human_ref_A",), where), _text(row, ("human_ref_B",), where)
    if row.get("labels") not in (0, 1):
        raise where.error(f"field 'labels' must be 0 or 1, got {row.get('labels')!r}")
    chosen, rejected = (a, b) if row["labels"] == 1 else (b, a)
    return _pair(str(row.get("post_id", where.row)), [], _text(row, ("history",), where), chosen, rejected,
                 str(row.get("domain", "shp")), where)


# ---- the registry ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    name: str
    title: str
    adapter: Adapter
    hub_id: str | None = None
    split: str = "train"
    modality: str = "image"
    paper_pairs: int = 0
    top_gap: int | None = None
    """Keep only this many pairs with the largest `meta["gap"]` (UltraFeedback's Ultra-Hard); a cap overrides."""
    archive: bool = False
    """Read the MMPR layout (meta.json, annotation jsonl, image zip parts); needs a local copy."""


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("rlaif-v", "RLAIF-V", question_pair, "openbmb/RLAIF-V-Dataset", paper_pairs=83_000),
    Source("mmpr", "MMPR v1.2", question_pair, "OpenGVLab/MMPR-v1.2", paper_pairs=2_000_000, archive=True),
    Source("r1-reward", "R1-Reward", r1_reward_pair, "yifanzhang114/R1-Reward-RL", paper_pairs=200_000),
    Source("tulu3", "Tulu-3 IF-augmented on-policy 70b", chat_pair, "allenai/tulu-3-IF-augmented-on-policy-70b",
           modality="text", paper_pairs=65_000),
    Source("olmo2", "OLMo-2 0425-1b preference mix", chat_pair, "allenai/olmo-2-0425-1b-preference-mix",
           modality="text", paper_pairs=378_000),
    Source("ultra-hard", "UltraFeedback, largest score gap", chat_pair, "HuggingFaceH4/ultrafeedback_binarized",
           split="train_prefs", modality="text", paper_pairs=63_000, top_gap=63_000),
    Source("others", "Others (WildChat-ultrafeedback, swe-arena, ...)", chat_pair, modality="text",
           paper_pairs=63_000),
    Source("mmif", "MMIF", question_pair, paper_pairs=22_000),
    Source("omni-align", "OmniAlign-V-DPO", question_pair, "PhoenixZ/OmniAlign-V-DPO", paper_pairs=120_000),
    Source("ultra-all", "UltraFeedback, all pairs", chat_pair, "HuggingFaceH4/ultrafeedback_binarized",
           split="train_prefs", modality="text", paper_pairs=300_000),
    Source("shp", "SHP", shp_pair, "stanfordnlp/SHP", modality="text", paper_pairs=348_000),
)}
MIXES = {"basereward": ("rlaif-v", "mmpr", "r1-reward", "tulu3", "olmo2", "ultra-hard", "others"),
         "basereward-rejected": ("mmif", "omni-align", "ultra-all", "shp")}
"""The paper's final 7-dataset mix (2.8M pairs) and the four sets its data ablation rejected."""


def parse_sources(spec: str, flag: str = "--data") -> list[tuple[Source, str | None]]:
    """`"basereward"`, `"rlaif-v,mmpr=/data/MMPR-v1.2"`, ... → [(source, local path or None), ...].

    >>> [(s.name, p) for s, p in parse_sources("rlaif-v,mmpr=/d/MMPR")]
    [('rlaif-v', None), ('mmpr', '/d/MMPR')]
    """
    out: list[tuple[Source, str | None]] = []
    for entry in (e.strip() for e in spec.split(",") if e.strip()):
        name, _, path = entry.partition("=")
        names = MIXES.get(name.strip(), (name.strip(),))
        for n in names:
            if n not in SOURCES:
                raise UserError(f"{flag} {spec!r}: unknown source {n!r}; choose from "
                                f"{', '.join([*MIXES, *SOURCES])}, or shapes")
            out.append((SOURCES[n], path.strip() or None if len(names) == 1 else None))
    if not out:
        raise UserError(f"{flag} {spec!r} names no source")
    return out


# ---- readers: where the rows come from ---------------------------------------------------------------------
ImageFn = Callable[[Any, Where], list[Any]]


def local_images(root: Path | None) -> ImageFn:
    """Image values of local rows: relative paths (checked to exist inside `root`), `{"bytes", "path"}` dicts
    (Parquet, `datasets`), PIL images, or a list of them; None = text-only."""
    from PIL import Image

    def one(value: Any, where: Where) -> Any:
        if isinstance(value, Image.Image):
            return value
        if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
            return BytesImage(value["bytes"]) if value.get("bytes") else one(value["path"], where)
        if isinstance(value, str) and value.strip():
            path = Path(value) if Path(value).is_absolute() or root is None else root / value
            if not path.is_file():
                raise where.error(f"image {value!r} not found{f' in {root}' if root else ''}")
            return FileImage(path)
        raise where.error(f"image value of type {type(value).__name__} is not a path, bytes or an image")

    def images(value: Any, where: Where) -> list[Any]:
        if value is None:
            return []
        return [one(v, where) for v in (value if isinstance(value, list | tuple) else [value])]

    return images


def _hub_rows(source: Source) -> Iterator[tuple[Where, dict[str, Any], ImageFn]]:
    """A hub dataset, its Image columns left undecoded: images load from the memory-mapped table when used."""
    import datasets

    try:
        table = datasets.load_dataset(source.hub_id, split=source.split)
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as err:
        raise UserError(f"--data {source.name}: cannot load {source.hub_id} [{source.split}] "
                        f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); pass {source.name}=PATH "
                        "for a local copy") from None
    columns = [k for k, f in table.features.items() if isinstance(f, datasets.Image)]
    for column in columns:
        table = table.cast_column(column, datasets.Image(decode=False))
    label = f"{source.hub_id} [{source.split}]"
    for i in range(len(table)):
        row = table[i]
        refs = {k: TableImage(table, i, k) for k in columns if row.get(k) is not None}
        yield Where(label, i + 1), {**row, **refs}, local_images(None)


def _mmpr_rows(folder: Path) -> Iterator[tuple[Where, dict[str, Any], ImageFn]]:
    """MMPR's layout: `meta.json` ({name: {"root", "annotation", ...}}), the annotation jsonl files (in
    `annotations.zip` or on disk) and the images (`images.zip` or its parts `images.zip_aa`, ... , or on disk)."""
    from visionrl.core.data.readers import jsonl_rows

    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        raise UserError(f"--data mmpr={folder}: no meta.json; pass a local copy of OpenGVLab/MMPR-v1.2")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    notes = sorted(folder.glob("annotations.zip*"))
    parts = tuple(sorted(p for p in folder.glob("images.zip*") if p.is_file()))
    for name in sorted(meta):
        entry = meta[name]
        label = f"{folder / 'meta.json'} [{name}]"
        if notes:
            archive = open_archive(tuple(notes))
            member = find_member(archive, entry["annotation"])
            if member is None:
                raise DataError(f"{label}: annotation {entry['annotation']!r} is not in {notes[0].name}")
            lines = archive.read(member).decode("utf-8").splitlines()
            rows: Iterator[tuple[int, dict[str, Any]]] = ((n, json.loads(x)) for n, x in enumerate(lines, 1) if x.strip())
            label = f"{notes[0].name}:{member}"
        else:
            path = _under(folder, entry["annotation"])
            rows, label = jsonl_rows(path, str(path)), str(path)
        images = _mmpr_images(folder, parts, entry.get("root", ""))
        for n, row in rows:
            yield Where(label, n), row, images


def _under(folder: Path, path: str) -> Path:
    """`path` from meta.json inside `folder` (its leading folders may name the repository itself)."""
    parts = Path(path).parts
    for i in range(len(parts)):
        if (candidate := folder.joinpath(*parts[i:])).exists():
            return candidate
    return folder / path


def _mmpr_images(folder: Path, parts: tuple[Path, ...], root: str) -> ImageFn:
    def images(value: Any, where: Where) -> list[Any]:
        out = []
        for name in [] if value is None else value if isinstance(value, list) else [value]:
            path = f"{root}/{name}"
            if parts:
                member = find_member(open_archive(parts), path)
                if member is None:
                    raise where.error(f"image {name!r} is not in {parts[0].name} (looked for {path})")
                out.append(ZipImage(parts, member))
            else:
                out += local_images(None)(str(_under(folder, path)), where)
        return out

    return images


def raw_rows(source: Source, path: str | None) -> Iterator[tuple[Where, dict[str, Any], ImageFn]]:
    """The rows of `source`: its hub dataset, or the local copy at `path`."""
    from visionrl.core.data.loaders import iter_rows, source_root

    if source.archive:
        if path is None or not Path(path).expanduser().is_dir():
            raise UserError(f"--data {source.name}: ships as zip parts, not a datasets table; download it "
                            f"(hf download {source.hub_id} --repo-type dataset --local-dir DIR) and pass "
                            f"{source.name}=DIR")
        yield from _mmpr_rows(Path(path).expanduser())
    elif path is not None:
        images = local_images(source_root(path))
        for where, row in iter_rows(path, split=source.split):
            yield where, row, images
    elif source.hub_id is None:
        raise UserError(f"--data {source.name}: there is no hub dataset; pass {source.name}=PATH")
    else:
        yield from _hub_rows(source)


def open_source(source: Source, path: str | None = None) -> Iterator[PairRecord]:
    """The source's pairs, streamed (`top_gap` sources read everything once, keeping the largest gaps)."""
    def pairs() -> Iterator[PairRecord]:
        for where, row, images in raw_rows(source, path):
            pair = source.adapter(row, where, images)
            if pair is not None:
                yield replace(pair, id=f"{source.name}-{pair.id}", category=pair.category or source.name)

    if source.top_gap is None:
        return pairs()
    scored = ((p.meta.get("gap", 0.0), i, p) for i, p in enumerate(pairs()))
    return iter(p for _, _, p in sorted(heapq.nlargest(source.top_gap, scored), key=lambda t: t[1]))

"""Loading, validation and round trips of dataset folders, files and `datasets` sources (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import huggingface_hub
import numpy as np
import pytest
from PIL import Image
from visionrl.core.data import (
    DataError,
    MCQRecord,
    PairRecord,
    ShapesWorld,
    VQARecord,
    load_records,
    write_folder,
)


def same(a, b) -> bool:
    """Records equal field by field, images by pixels."""
    fa, fb = dict(vars(a)), dict(vars(b))
    ia, ib = fa.pop("images"), fb.pop("images")
    return (
        type(a) is type(b)
        and fa == fb
        and len(ia) == len(ib)
        and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(ia, ib, strict=True))
    )


def png_bytes(size=(8, 8), color=(200, 10, 10)) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def write_jsonl(folder: Path, rows: list, name: str = "data.jsonl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def offline_datasets(tmp_path, monkeypatch):
    """Keep `datasets` off the network and its cache inside the test's temp dir."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)


# ---------------------------------------------------------------- round trips

WORLD = ShapesWorld(0)
KINDS = {
    "vqa": lambda: WORLD.vqa(12) + WORLD.captions(4),
    "mcq": lambda: WORLD.mcq(12),
    "pair": lambda: WORLD.pairs(16),
}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_write_then_load_round_trips(tmp_path, kind, fmt):
    records = KINDS[kind]()
    folder = write_folder(records, tmp_path / "ds", fmt=fmt)
    assert (folder / f"data.{fmt}").is_file()
    assert (folder / "images" / f"{records[0].id}_0.png").is_file()
    back = load_records(folder, kind)
    assert len(back) == len(records)
    assert all(same(a, b) for a, b in zip(records, back, strict=True)), [
        (a.id, b.id) for a, b in zip(records, back, strict=True)
    ]
    assert all(img.mode == "RGB" for r in back for img in r.images)


def test_text_only_pairs_round_trip(tmp_path):
    records = [
        PairRecord(f"p{i}", [], f"prompt {i}", "good", "bad", "safety", group_id="g") for i in range(3)
    ]
    back = load_records(write_folder(records, tmp_path / "ds", fmt="parquet"), "pair")
    assert all(same(a, b) for a, b in zip(records, back, strict=True))


def test_write_folder_is_atomic(tmp_path):
    records = WORLD.vqa(3)
    records[2].meta["bad"] = object()  # not JSON: fails after two rows were written
    with pytest.raises(ValueError, match="shapes-vqa-2"):
        write_folder(records, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a temp dir is left behind
    write_folder(WORLD.vqa(2), tmp_path / "ds")
    with pytest.raises(FileExistsError):
        write_folder(WORLD.vqa(2), tmp_path / "ds")
    write_folder(WORLD.vqa(4), tmp_path / "ds", overwrite=True)
    assert len(load_records(tmp_path / "ds", "vqa")) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


# ---------------------------------------------------------------- source variants


def test_single_files_column_mapping_and_field_forms(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png_bytes())
    rows = [
        {"problem": "Q1?", "solution": "A", "opts": ["x", "y"], "pics": "img/a.png"},
        {"problem": "Q2?", "solution": "b", "opts": {"A": "x", "B": "y"}, "pics": ["img/a.png", "img/a.png"]},
        {"problem": "Q3?", "solution": "y", "opts": json.dumps(["x", "y"])},
    ]
    write_jsonl(tmp_path, rows, "mine.jsonl")
    columns = {"question": "problem", "answer": "solution", "options": "opts", "images": "pics"}
    recs = load_records(tmp_path / "mine.jsonl", "mcq", columns=columns)
    assert [r.id for r in recs] == ["mine-1", "mine-2", "mine-3"]
    assert [r.answer for r in recs] == ["A", "B", "B"]  # letter, lower-case letter, option text
    assert [len(r.images) for r in recs] == [1, 2, 0]
    assert recs[0].options == {"A": "x", "B": "y"} and recs[0].images[0].getpixel((0, 0)) == (200, 10, 10)
    assert len(load_records(tmp_path / "mine.jsonl", "mcq", columns=columns, limit=2)) == 2


def test_parquet_with_image_bytes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question": "q?", "answer": 3, "images": [{"bytes": png_bytes(), "path": "a.png"}]}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    (rec,) = load_records(tmp_path / "train.parquet", "vqa")
    assert rec.answer == "3" and rec.images[0].size == (8, 8)


def test_datasets_path_on_a_local_hub_style_folder(tmp_path, offline_datasets):
    records = WORLD.mcq(10)
    features = datasets.Features(
        q=datasets.Value("string"),
        opts=datasets.List(datasets.Value("string")),
        answer=datasets.Value("string"),
        image=datasets.Image(),
    )
    ds = datasets.Dataset.from_dict(
        {
            "q": [r.question for r in records],
            "opts": [list(r.options.values()) for r in records],
            "answer": [r.answer for r in records],
            "image": [r.images[0] for r in records],
        },
        features=features,
    )
    # The layout of a Hub dataset repo: no data file at the top level, so `load_dataset` reads it.
    (tmp_path / "repo" / "data").mkdir(parents=True)
    ds.to_parquet(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet")
    back = load_records(
        tmp_path / "repo", "mcq", columns={"question": "q", "options": "opts", "images": "image"}
    )
    assert all(isinstance(r, MCQRecord) for r in back)
    assert [r.id for r in back] == [f"repo-{i}" for i in range(1, 11)]
    for a, b in zip(records, back, strict=True):
        assert (a.question, a.options, a.answer) == (b.question, b.options, b.answer)
        assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))


def test_unknown_hub_id_offline_is_a_clear_data_error(offline_datasets):
    with pytest.raises(DataError, match="nobody-here/no-such-dataset-42") as e:
        load_records("nobody-here/no-such-dataset-42", "vqa")
    assert "\n" not in str(e.value) and "split 'train'" in str(e.value)


def test_empty_folder_is_a_clear_data_error(tmp_path, offline_datasets):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: a folder without .jsonl/.parquet files"):
        load_records(tmp_path / "empty", "vqa")


def test_limit_stops_before_later_bad_rows(tmp_path):
    write_jsonl(tmp_path, [{"question": "q?", "answer": "a"}, {"question": "q?", "answer": "b"}, "{broken"])
    assert [r.id for r in load_records(tmp_path, "vqa", limit=2)] == ["data-1", "data-2"]
    with pytest.raises(DataError, match="row 3: malformed JSON"):
        load_records(tmp_path, "vqa")


def test_large_images_are_resized_on_request(tmp_path):
    (tmp_path / "big.png").write_bytes(png_bytes(size=(40, 10)))
    write_jsonl(tmp_path, [{"question": "q?", "answer": "a", "images": "big.png"}])
    (rec,) = load_records(tmp_path, "vqa", max_pixels=100, resize_large=True)
    assert rec.images[0].size[0] * rec.images[0].size[1] <= 100
    assert rec.images[0].size == (20, 5)


# ---------------------------------------------------------------- bad inputs

GOOD_VQA = {"id": "a", "question": "What?", "answer": "red", "images": ["ok.png"]}
GOOD_MCQ = {"id": "a", "question": "What?", "options": {"A": "x", "B": "y"}, "answer": "A"}


def _vqa(**row) -> list:
    return [GOOD_VQA, {"id": "b", "question": "Why?", "answer": "blue", "images": ["ok.png"]} | row]


def _without(row: dict, key: str) -> dict:
    return {k: v for k, v in row.items() if k != key}


# (name, kind, data.jsonl content: list of rows / raw bytes, extra files, load kwargs, expected fragments)
BAD = [
    (
        "missing field",
        "vqa",
        [GOOD_VQA, _without(_vqa()[1], "answer")],
        {},
        {},
        ["row 2", "'answer' is missing"],
    ),
    (
        "mapped column missing",
        "vqa",
        _vqa(),
        {},
        {"columns": {"question": "problem"}},
        ["row 1", "'problem'"],
    ),
    ("wrong type", "vqa", _vqa(question=["a", "b"]), {}, {}, ["row 2", "'question' must be a string"]),
    ("empty question", "vqa", _vqa(question="  "), {}, {}, ["row 2", "'question' is empty"]),
    ("empty chosen", "pair", [{"prompt": "p", "chosen": "", "rejected": "r"}], {}, {}, ["row 1", "'chosen'"]),
    (
        "non-utf8",
        "vqa",
        json.dumps(GOOD_VQA).encode() + b'\n{"question": "caf\xe9"}\n',
        {},
        {},
        ["row 2", "UTF-8"],
    ),
    (
        "malformed json",
        "vqa",
        json.dumps(GOOD_VQA).encode() + b'\n{"question": "x",\n',
        {},
        {},
        ["row 2", "JSON"],
    ),
    ("not an object", "vqa", json.dumps(GOOD_VQA).encode() + b"\n[1, 2]\n", {}, {}, ["row 2", "JSON object"]),
    ("duplicate id", "vqa", _vqa(id="a"), {}, {}, ["row 2", "duplicate id 'a'", "row 1"]),
    ("missing image", "vqa", _vqa(images=["nope.png"]), {}, {}, ["row 2", "'nope.png' not found"]),
    (
        "corrupt image",
        "vqa",
        _vqa(images=["bad.png"]),
        {"bad.png": b"\x89PNG\r\n\x1a\nnot really"},
        {},
        ["row 2", "'bad.png' cannot be decoded"],
    ),
    (
        "not an image",
        "vqa",
        _vqa(images=["note.png"]),
        {"note.png": b"hello"},
        {},
        ["row 2", "'note.png' cannot"],
    ),
    (
        "truncated image",
        "vqa",
        _vqa(images=["cut.png"]),
        {"cut.png": png_bytes()[:-20]},
        {},
        ["row 2", "'cut.png'"],
    ),
    ("zero-byte image", "vqa", _vqa(images=["empty.png"]), {"empty.png": b""}, {}, ["row 2", "0-byte"]),
    (
        "escaping path",
        "vqa",
        _vqa(images=["../../etc/passwd"]),
        {},
        {},
        ["row 2", "outside the dataset folder"],
    ),
    ("absolute path", "vqa", _vqa(images=["/etc/passwd"]), {}, {}, ["row 2", "absolute"]),
    ("oversized image", "vqa", _vqa(), {}, {"max_pixels": 32}, ["row 1", "over the limit of 32"]),
    (
        "bad mcq letter",
        "mcq",
        [GOOD_MCQ, GOOD_MCQ | {"id": "b", "answer": "E"}],
        {},
        {},
        ["row 2", "'E'", "A, B"],
    ),
    ("bad options", "mcq", [GOOD_MCQ | {"options": 5}], {}, {}, ["row 1", "'options'"]),
    ("one option", "mcq", [GOOD_MCQ | {"options": ["x"]}], {}, {}, ["row 1", "at least two"]),
    ("bad meta", "vqa", _vqa(meta=[1]), {}, {}, ["row 2", "'meta'"]),
    ("image wrong type", "vqa", _vqa(images=[3]), {}, {}, ["row 2", "'images'"]),
]


@pytest.mark.parametrize(
    ("name", "kind", "content", "files", "kwargs", "expected"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_input_raises_data_error_naming_file_and_row(
    tmp_path, name, kind, content, files, kwargs, expected
):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "ok.png").write_bytes(png_bytes())
    for fname, data in files.items():
        (folder / fname).write_bytes(data)
    if isinstance(content, bytes):
        (folder / "data.jsonl").write_bytes(content)
    else:
        write_jsonl(folder, content)
    with pytest.raises(DataError) as e:
        load_records(folder, kind, **kwargs)
    message = str(e.value)
    assert "data.jsonl" in message and "\n" not in message
    for fragment in expected:
        assert fragment in message


def test_bad_parquet_rows_and_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question": "q?", "answer": "a"}, {"question": "q?", "answer": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data.parquet")
    with pytest.raises(DataError, match=r"data\.parquet row 2: field 'answer' is missing"):
        load_records(tmp_path, "vqa")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet: cannot read Parquet"):
        load_records(tmp_path / "broken.parquet", "vqa")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [("missing-folder/", "no such file or folder"), ("missing.jsonl", "no such file or folder")],
)
def test_missing_sources(tmp_path, source, fragment):
    with pytest.raises(DataError, match=fragment) as e:
        load_records(tmp_path / source, "vqa")
    assert source.rstrip("/") in str(e.value)


def test_other_user_errors(tmp_path):
    write_jsonl(tmp_path, [GOOD_VQA])
    (tmp_path / "ok.png").write_bytes(png_bytes())
    with pytest.raises(DataError, match="unknown record kind"):
        load_records(tmp_path, "qa")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not fields of a vqa record"):
        load_records(tmp_path, "vqa", columns={"prompt": "q"})
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_records(tmp_path / "notes.txt", "vqa")
    empty = tmp_path / "empty"
    write_jsonl(empty, [])
    with pytest.raises(DataError, match="no records"):
        load_records(empty, "vqa")
    assert issubclass(DataError, ValueError)
    assert isinstance(load_records(tmp_path, "vqa")[0], VQARecord)


# ---------------------------------------------------------------- iter_rows: TSV and JSON files


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_iter_rows_reads_a_vlmevalkit_tsv(tmp_path):
    """Header = row 1; empty cells are None; `image` holds base64, a list of it, or another row's index."""
    from visionrl.core.data.loaders import iter_rows, source_root

    red, blue = _b64(png_bytes()), _b64(png_bytes(color=(0, 0, 250)))
    lines = [
        "index\tquestion\tA\tB\tanswer\timage",
        f"1\tWhat colour?\tred\tblue\tA\t{red}",
        "",  # a blank line still counts as a row
        "2\tSame image?\tyes\tno\t\t1",  # VLMEvalKit: the image of the row with index 1
        f"3\tTwo images?\tyes\tno\tA\t{str([red, blue])}",
        '4\t"Quoted\ttab"\tx\ty\tB\timages/a.png',  # short and not an index: left as text
    ]
    (tmp_path / "bench.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = list(iter_rows(tmp_path))
    assert [(w.file, w.row) for w, _ in rows] == [(str(tmp_path / "bench.tsv"), n) for n in (2, 4, 5, 6)]
    first, same, two, quoted = (r for _, r in rows)
    assert first["A"] == "red" and first["image"] == {"bytes": png_bytes(), "path": None}
    assert same["answer"] is None and same["image"] == first["image"]
    assert [im["bytes"] for im in two["image"]] == [png_bytes(), png_bytes(color=(0, 0, 250))]
    assert quoted["question"] == "Quoted\ttab" and quoted["image"] == "images/a.png"
    assert source_root(tmp_path / "bench.tsv") == tmp_path and source_root("owner/name") is None


def test_load_records_from_a_tsv(tmp_path):
    lines = ["id\tquestion\tanswer\timage", f"q1\tWhat colour?\tred\t{_b64(png_bytes())}", "q2\tAnd?\tblue\t"]
    (tmp_path / "data.tsv").write_text("\n".join(lines) + "\n")
    a, b = load_records(tmp_path, "vqa", columns={"images": "image"})
    assert (a.id, a.answer, a.images[0].size) == ("q1", "red", (8, 8))
    assert (b.id, b.images) == ("q2", [])


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        (["id\tquestion\tid", "1\tq\t1"], "bench.tsv row 1: the header names a column twice"),
        (["id\tquestion", "1\tq", "2\tq\textra"], "bench.tsv row 3: has 3 cells but the header names 2"),
        (["id\timage", "1\t" + "!" * 80], "bench.tsv row 2: column 'image' is not valid base64"),
        (["id\timage", "1\t[" + "'x'," * 30 + "]"], "bench.tsv row 2: column 'image' is not valid base64"),
        (["id\timage", "1\t[" + "x" * 80 + "]"], "bench.tsv row 2: column 'image' looks like a list"),
    ],
)
def test_bad_tsv_rows_name_file_and_row(tmp_path, lines, fragment):
    from visionrl.core.data.loaders import iter_rows

    (tmp_path / "bench.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=fragment.replace("[", r"\[")):
        list(iter_rows(tmp_path / "bench.tsv"))


def test_bad_tsv_encoding_names_the_row(tmp_path):
    from visionrl.core.data.loaders import iter_rows

    (tmp_path / "bench.tsv").write_bytes(b"id\tq\n1\tok\n2\tcaf\xe9\n")
    with pytest.raises(DataError, match=r"bench\.tsv row \d: file is not valid UTF-8"):
        list(iter_rows(tmp_path / "bench.tsv"))


def test_iter_rows_reads_a_json_array_file(tmp_path):
    from visionrl.core.data.loaders import iter_rows

    (tmp_path / "all_data.json").write_text(json.dumps([{"ID": "a"}, {"ID": "b"}]))
    assert [(w.row, r["ID"]) for w, r in iter_rows(tmp_path / "all_data.json")] == [(1, "a"), (2, "b")]
    (tmp_path / "bad.json").write_text(json.dumps([{"ID": "a"}, 3]))
    with pytest.raises(DataError, match=r"bad\.json row 2: expected a JSON object"):
        list(iter_rows(tmp_path / "bad.json"))
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(DataError, match=r"obj\.json: expected a JSON array"):
        next(iter_rows(tmp_path / "obj.json"))


def test_iter_rows_resolves_the_source_eagerly(tmp_path, offline_datasets):
    from visionrl.core.data.loaders import iter_rows

    with pytest.raises(DataError, match="no such file or folder"):
        iter_rows(tmp_path / "missing.tsv")  # raises before any row is read
    with pytest.raises(DataError, match="nobody-here/none"):
        iter_rows("nobody-here/none", split="test", config="en")


def test_tsv_limit_stops_before_a_later_bad_row(tmp_path):
    lines = ["id\tquestion\tanswer", "a\tq?\tx", "b\tq?\ty", "c\tq?\tz\textra"]
    (tmp_path / "data.tsv").write_text("\n".join(lines) + "\n")
    assert [r.id for r in load_records(tmp_path, "vqa", limit=2)] == ["a", "b"]
    with pytest.raises(DataError, match=r"data\.tsv row 4: has 4 cells"):
        load_records(tmp_path, "vqa")

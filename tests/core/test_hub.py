"""Tests for the Hugging Face export and push: a tiny Llama round-trips, the card parses, uploads are mocked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from visionrl.core import hub
from visionrl.core.errors import UserError

TOKEN = "hf_SECRETTOKEN123"
CARD = hub.ModelCardInfo(
    base_model="Qwen/Qwen2.5-VL-3B-Instruct",
    datasets=["lmms-lab/ScienceQA", "shapes"],
    method="GRPO",
    paper="2508.19652",
    hyperparameters={"beta": 0.04, "group_size": 8, "lr": 1e-6},
    metrics={"before": {"accuracy": 0.25}, "after": {"accuracy": 0.5, "reward": 0.625}},
    tags=["vision-sr1"],
)


def tiny_model_and_tokenizer() -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    torch.manual_seed(0)
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "</s>", *(f"w{i}" for i in range(61))])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return LlamaForCausalLM(config), fast


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, LlamaForCausalLM, PreTrainedTokenizerFast]:
    model, tok = tiny_model_and_tokenizer()
    out = tmp_path_factory.mktemp("run") / "model"
    out.mkdir()
    (out / "stale.bin").write_bytes(b"from an older export")  # replaced as a whole
    assert hub.export_model(model, tok, out, CARD) == out
    return out, model, tok


def test_export_round_trips_weights_and_tokenizer(exported) -> None:
    out, model, tok = exported
    assert (out / "model.safetensors").exists() and not (out / "stale.bin").exists()
    assert [p.name for p in out.parent.iterdir()] == ["model"]  # no temp or backup dirs left behind
    reloaded = LlamaForCausalLM.from_pretrained(out)
    expected = model.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert PreTrainedTokenizerFast.from_pretrained(out)("w1 w2 w60").input_ids == tok("w1 w2 w60").input_ids


def test_model_card_metadata_and_tables(exported) -> None:
    card = ModelCard.load(exported[0] / "README.md")
    data = card.data
    assert data.base_model == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert data.datasets == ["lmms-lab/ScienceQA"]  # "shapes" is not a Hub dataset id
    assert {"visionrl", "grpo", "arxiv:2508.19652", "vision-sr1"} <= set(data.tags)
    assert (data.library_name, data.pipeline_tag, data.license) == (
        "transformers",
        "image-text-to-text",
        "apache-2.0",
    )
    assert "https://arxiv.org/abs/2508.19652" in card.text
    assert "| beta | 0.04 |" in card.text and "| after/accuracy | 0.5 |" in card.text


def test_local_base_model_stays_out_of_metadata(tmp_path: Path) -> None:
    info = hub.ModelCardInfo(
        base_model=str(tmp_path), datasets=["shapes"], method="Bradley-Terry RM", paper="2509.16127"
    )
    card = hub.render_model_card(info)
    assert card.data.base_model is None and "bradley-terry-rm" in card.data.tags
    assert f"`{tmp_path}`" in card.text and "n/a" in card.text


def is_private(create_body: dict) -> bool:
    # huggingface_hub 2.x sends {"visibility": "private"}; 1.x sent {"private": true}.
    return create_body.get("visibility") == "private" or create_body.get("private") is True


@pytest.fixture
def fake_hub(fake_hub, monkeypatch: pytest.MonkeyPatch):
    """The shared mocked Hub (tests/conftest.py), with this module's token in the environment."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return fake_hub


def test_push_creates_private_repo_and_uploads_without_leaking_the_token(
    exported, fake_hub, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    out = exported[0]
    with caplog.at_level(logging.DEBUG):
        hub.main([str(out), "me/tiny"])  # visionrl-push FOLDER REPO_ID; the token comes from HF_TOKEN

    (create,) = fake_hub.find("/api/repos/create")
    body = json.loads(create.content)
    assert is_private(body) and (body["name"], body["organization"]) == ("tiny", "me")
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    (commit,) = fake_hub.find("/commit/main")
    uploaded = {json.loads(line)["value"].get("path") for line in commit.content.decode().splitlines()}
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= uploaded

    captured = capsys.readouterr()
    assert captured.out.strip() == "https://huggingface.co/me/tiny/commit/" + "a" * 40
    assert TOKEN not in captured.out + captured.err + caplog.text
    for path in out.parent.rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_push_public_flag(exported, fake_hub) -> None:
    hub.main([str(exported[0]), "me/tiny", "--public"])
    (create,) = fake_hub.find("/api/repos/create")
    assert not is_private(json.loads(create.content))


def test_push_user_errors(
    exported, fake_hub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="not a directory"):
        hub.push_to_hub(tmp_path / "missing", "me/tiny")
    fake_hub.create_status = 401
    with pytest.raises(UserError, match="HTTP 401"):
        hub.push_to_hub(exported[0], "me/tiny")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    fake_hub.requests.clear()
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        hub.push_to_hub(exported[0], "me/tiny")
    assert fake_hub.requests == []


def test_push_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        hub.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "FOLDER" in out and "REPO-ID" in out and "--public" in out and "--no-public" not in out

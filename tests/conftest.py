"""Shared fixtures: tiny random VLMs of every supported family, built offline once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Tests never touch the network. The demo model uses its normal cache (`$VISIONRL_CACHE`, default
    `~/.cache/visionrl`), so a machine that has built it once does not build it again."""
    import os

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """The real embedded demo model (built once per cache, a few minutes on 2 cores)."""
    from visionrl.core.demo import ensure_demo_model

    return ensure_demo_model()


class TinyBuild(NamedTuple):
    """A tiny model as built in memory, and the folder it was saved to."""

    path: Path
    model: Any  # the in-memory *ForConditionalGeneration, fp32, eval mode
    processor: Any


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], TinyBuild]]:
    """`tiny_build(family)`: build and save the family's tiny model on first use, then reuse it.

    Lazy so that `-k qwen` builds only the Qwen models.
    """
    import torch
    from visionrl.core.vlm.tiny import build_tiny

    # Tiny matrices: one thread is as fast as two, and far faster when another process holds a core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    built: dict[str, TinyBuild] = {}

    def get(family: str) -> TinyBuild:
        if family not in built:
            path = tmp_path_factory.mktemp(family)
            model, processor = build_tiny(family, path)
            built[family] = TinyBuild(path, model, processor)
        return built[family]

    yield get
    torch.set_num_threads(threads)


# At the default init (std 0.02) a tiny model's attention scores and logits are ~0.1: attention is
# near-uniform and next-token distributions near-flat, so wrong positions or padding move log-probs by
# only ~1e-3. Scaling the decoder's query/key projections and the output layer makes them matter.
# Mllama's cross-attention gates start at 0 (tanh 0 = 0): the text would never see the image.
QK_SCALE = 4.0  # attention scores ×16
OUT_SCALE = 8.0  # logits ×8
CROSS_ATTN_GATES = ("cross_attn_attn_gate", "cross_attn_mlp_gate")


def sharpen(model: Any) -> None:
    """Scale the text decoder's q/k projections and the output layer, and open Mllama's cross-attention
    gates, in place (the vision tower is untouched)."""
    import torch

    out = model.get_output_embeddings()
    assert out.weight is not model.get_input_embeddings().weight, "tiny models are built untied"
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".language_model." in f".{name}" and name.split(".")[-2] in ("q_proj", "k_proj"):
                param.mul_(QK_SCALE)
            if name.split(".")[-1] in CROSS_ATTN_GATES:
                param.fill_(1.0)
        out.weight.mul_(OUT_SCALE)


@pytest.fixture(scope="session")
def tiny_vlm(tiny_build: Callable[[str], TinyBuild]) -> Callable[[str], Any]:
    """`tiny_vlm(family)`: `load_vlm` of the family's tiny folder, `sharpen`ed, loaded once per session.

    Shared: tests must not change it (deep-copy the model to tweak weights).
    """
    from visionrl.core.vlm import load_vlm

    loaded: dict[str, Any] = {}

    def get(family: str) -> Any:
        if family not in loaded:
            vlm = load_vlm(tiny_build(family).path)
            sharpen(vlm.model)
            loaded[family] = vlm
        return loaded[family]

    return get


@pytest.fixture
def vlm(family: str, tiny_vlm: Callable[[str], Any]) -> Any:
    """The session's VLM for the test's `family` parameter."""
    return tiny_vlm(family)


class FakeHub:
    """Answers the few Hub endpoints `create_repo` + `upload_folder` call (environment.md §7) and records
    every request; `create_status` != 200 makes repo creation fail."""

    def __init__(self, repo_id: str = "me/tiny", create_status: int = 200, whoami_status: int = 200) -> None:
        self.repo_id, self.create_status, self.whoami_status = repo_id, create_status, whoami_status
        self.requests: list[Any] = []

    def __call__(self, req: Any) -> Any:
        import json

        import httpx2

        self.requests.append(req)
        path = req.url.path
        if path == "/api/repos/create":
            if self.create_status != 200:
                return httpx2.Response(self.create_status, json={"error": "Invalid credentials"})
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{self.repo_id}", "name": self.repo_id})
        if "/preupload/" in path:
            files = json.loads(req.content)["files"]
            rows = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            return httpx2.Response(200, json={"files": rows})
        if "/commit/" in path:
            oid = "a" * 40
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/{self.repo_id}/commit/{oid}",
                                              "commitOid": oid})
        if path == "/api/whoami-v2":
            if self.whoami_status != 200:
                return httpx2.Response(self.whoami_status, json={"error": "Invalid credentials in Authorization header"})
            return httpx2.Response(200, json={"name": self.repo_id.split("/")[0], "type": "user", "auth": {}})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        return httpx2.Response(404, json={"error": "not mocked"})

    def find(self, fragment: str) -> list[Any]:
        return [r for r in self.requests if fragment in r.url.path]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """huggingface_hub talking to a `FakeHub` instead of the network (offline mode lifted for the test)."""
    import httpx2
    import huggingface_hub
    import huggingface_hub.constants
    import huggingface_hub.utils._http

    # The test configuration turns offline mode on; huggingface_hub read it at import, so patch both.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    fake = FakeHub()
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    yield fake
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)


LIBRARY_NOISE = ("GPU available", "TPU available", "litlogger", "LitLogger", "Modules in train mode", "Total FLOPs",
                 "_pytree", "LeafSpec", "Epoch 0/", "Checkpoint directory", "weights_only", "Writing model shards",
                 "Loading weights", "Traceback", "Warning", "warn(", "manual optimization", "is not resumable",
                 "`Trainer.fit` stopped", "Training:")
"""What a run's console must not show (the console module's docstring says why each is off)."""


@pytest.fixture
def library_noise() -> tuple[str, ...]:
    return LIBRARY_NOISE

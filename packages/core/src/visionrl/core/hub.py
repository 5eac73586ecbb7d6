"""Export a trained model as a Hugging Face folder with a model card, and push it to the Hub.

`export_model` writes safetensors weights, config, processor and a README.md model card into a sibling
temp dir and renames it into place, so `<output-dir>/model/` is either the old export or the complete new
one. `push_to_hub` creates the repo (private unless told otherwise) and uploads a folder. The token comes
from the argument, the `HF_TOKEN` environment variable or `hf auth login`; it is never written or logged.

Console script: `visionrl-push FOLDER REPO_ID [--public]`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tyro
from visionrl.core.cli import run_cli
from visionrl.core.errors import UserError

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

# owner/name, the shape of a Hub repo id; anything else (a local dir, "demo", "shapes") stays out of the
# YAML metadata, where the Hub would try to link it.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelCardInfo:
    """What the model card says about a trained model."""

    base_model: str
    """The model training started from (a Hub id, or a local path / "demo")."""
    datasets: list[str]
    """Training data ids (Hub ids are linked in the metadata)."""
    method: str
    """Training method, e.g. "GRPO" or "Bradley-Terry reward model"."""
    paper: str
    """arXiv id of the method's paper, e.g. "2508.19652"."""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """Settings shown in the hyperparameter table (nested dicts are flattened with "/")."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Results shown in the metrics table, e.g. {"before": {...}, "after": {...}}."""
    tags: list[str] = field(default_factory=list)
    """Extra Hub tags ("visionrl", the method and the paper are always added)."""
    license: str = "apache-2.0"
    """License id for the metadata; it should match the base model's license."""


def render_model_card(card: ModelCardInfo) -> ModelCard:
    """The model card: YAML metadata the Hub indexes, then method, paper, hyperparameters and metrics."""
    from huggingface_hub import ModelCard, ModelCardData

    hub_datasets = [d for d in card.datasets if _is_hub_id(d)]
    data = ModelCardData(
        base_model=card.base_model if _is_hub_id(card.base_model) else None,
        datasets=hub_datasets or None,
        tags=list(dict.fromkeys(["visionrl", _slug(card.method), f"arxiv:{card.paper}", *card.tags])),
        library_name="transformers",
        pipeline_tag="image-text-to-text",
        license=card.license,
    )
    body = [
        f"# {card.method} fine-tune of {card.base_model}",
        "",
        f"Trained with **{card.method}** ([arXiv:{card.paper}](https://arxiv.org/abs/{card.paper})) "
        "using visionrl.",
        "",
        f"- Base model: `{card.base_model}`",
        f"- Training data: {', '.join(f'`{d}`' for d in card.datasets) or 'n/a'}",
        "",
        "## Hyperparameters",
        "",
        *_table(("name", "value"), _flatten(card.hyperparameters)),
        "",
        "## Metrics",
        "",
        *_table(("metric", "value"), _flatten(card.metrics)),
        "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))


def export_model(model: Any, processor: Any, out_dir: Path, card: ModelCardInfo,
                 state_dict: Mapping[str, Any] | None = None) -> Path:
    """Save `model` (safetensors), `processor` and a README.md model card to `out_dir`, replacing it whole.

    Call on global rank 0; `state_dict` (e.g. the full state gathered from FSDP shards) overrides the
    model's own parameters. `processor` may be a tokenizer, or None.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # A sibling, not $TMPDIR: the final rename must stay on one file system to be atomic.
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, state_dict=dict(state_dict) if state_dict is not None else None)
        if processor is not None:
            processor.save_pretrained(tmp)
        render_model_card(card).save(tmp / "README.md")
        _follow_umask(tmp)
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _follow_umask(folder: Path) -> None:
    """Give every exported file the mode the umask gives a new file (0644 under the usual 022): safetensors
    writes its file through a private temp file (0600), which teammates on a shared disk could not read."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
    folder.chmod(0o777 & ~umask)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move `src` to `dst`; an existing `dst` is moved aside first, since rename cannot replace a full dir."""
    if not dst.exists():
        os.replace(src, dst)
        return
    old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


def check_push(repo_id: str, *, token: str | None = None, flag: str = "--push-to-hub") -> None:
    """Before any training: `repo_id` is a valid Hub repo id, the Hub is reachable (not offline mode), a token
    exists and the Hub accepts it. Raises `UserError` naming `flag`; the token is never printed."""
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UserError(f"{flag} {repo_id!r}: not a Hub repo id (owner/name of letters, digits, '-', '_', '.')") \
            from None
    if constants.HF_HUB_OFFLINE:
        raise UserError(f"{flag}: Hugging Face offline mode is on (HF_HUB_OFFLINE=1); unset it to push to the Hub.")
    token = token or get_token()
    if not token:
        raise UserError(f"{flag}: no Hugging Face token found; set HF_TOKEN or run `hf auth login` first.")
    try:
        HfApi(token=token).whoami()
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise UserError(f"{flag}: the Hub refused the token (HTTP {status}); set a valid HF_TOKEN.") from None
    except OSError as exc:  # network unreachable, DNS, TLS
        raise UserError(f"{flag}: cannot reach the Hugging Face Hub to check the token ({type(exc).__name__}).") \
            from None


def push_to_hub(
    folder: Path,
    repo_id: str,
    *,
    private: bool = True,
    token: str | None = None,
    commit_message: str = "Upload model trained with visionrl",
) -> str:
    """Create `repo_id` if needed (private by default) and upload `folder`; return the commit URL.

    `token=None` lets huggingface_hub use `HF_TOKEN` or the stored login.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(
            f"{folder} is not a directory; pass the exported model folder (e.g. <output-dir>/model)."
        )
    offline = UserError("Hugging Face offline mode is on (HF_HUB_OFFLINE=1); unset it to push to the Hub.")
    if constants.HF_HUB_OFFLINE:
        raise offline
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)
    except OfflineModeIsEnabled:
        raise offline from None
    except LocalTokenNotFoundError:
        raise UserError("no Hugging Face token found; set HF_TOKEN or run `hf auth login`.") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise UserError(
                f"the Hub refused to write to {repo_id} (HTTP {status}); check the token's rights."
            ) from None
        raise
    return info.commit_url


@dataclass(frozen=True)
class PushArgs:
    """Upload an exported model folder to the Hugging Face Hub (private unless --public)."""

    folder: tyro.conf.Positional[Path]
    """Folder to upload, e.g. outputs/run/model."""
    repo_id: tyro.conf.Positional[str]
    """Target repo id, e.g. your-name/qwen2.5-vl-3b-grpo."""
    public: bool = False
    """Create the repo as public (an existing repo keeps its visibility)."""
    commit_message: str = "Upload model trained with visionrl"
    """Commit message on the Hub."""


def main(args: list[str] | None = None) -> None:
    """Entry point of `visionrl-push`; the token comes from HF_TOKEN or `hf auth login`, never a flag."""

    def _main() -> None:
        push = tyro.cli(
            PushArgs,
            args=args,
            prog="visionrl-push",
            config=(tyro.conf.FlagCreatePairsOff, tyro.conf.PositionalMetavarFromFieldName),
        )
        url = push_to_hub(
            push.folder, push.repo_id, private=not push.public, commit_message=push.commit_message
        )
        print(url)

    run_cli(_main)


def _is_hub_id(name: str) -> bool:
    return bool(_HUB_ID.match(name)) and not Path(name).exists()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        rows += _flatten(value, f"{name}/") if isinstance(value, Mapping) else [(name, value)]
    return rows


def _table(header: tuple[str, str], rows: list[tuple[str, Any]]) -> list[str]:
    if not rows:
        return ["n/a"]

    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    return [f"| {header[0]} | {header[1]} |", "|---|---|", *(f"| {cell(k)} | {cell(v)} |" for k, v in rows)]

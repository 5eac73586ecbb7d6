"""Load HF VLMs, build prompts, generate, and score completions (see `model.py`)."""

from visionrl.core.chat import IMAGE, Prompt
from visionrl.core.hparams import LoadOptions
from visionrl.core.vlm.adapters import SUPPORTED_MODEL_TYPES, FamilyAdapter, adapter_for
from visionrl.core.vlm.model import VLM, LogProbs, ModelLoadError, load_vlm

__all__ = ["IMAGE", "VLM", "LoadOptions", "LogProbs", "ModelLoadError", "Prompt", "load_vlm", "FamilyAdapter",
           "adapter_for", "SUPPORTED_MODEL_TYPES"]

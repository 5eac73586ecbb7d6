"""Load HF VLMs, build prompts, generate, and score completions (see `model.py`)."""

from visionrl.core.vlm.adapters import SUPPORTED_MODEL_TYPES, FamilyAdapter, adapter_for
from visionrl.core.vlm.model import IMAGE, VLM, LoadOptions, LogProbs, ModelLoadError, Prompt, load_vlm

__all__ = ["IMAGE", "VLM", "LoadOptions", "LogProbs", "ModelLoadError", "Prompt", "load_vlm", "FamilyAdapter",
           "adapter_for", "SUPPORTED_MODEL_TYPES"]

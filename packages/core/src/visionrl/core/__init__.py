"""visionrl core: VLM wrappers, rollout, losses, Lightning modules, data and Hub export."""

__version__ = "0.1.0"

"""Records, dataset loading/validation and the procedural `shapes` world."""

from visionrl.core.data.loaders import load_records, write_folder
from visionrl.core.data.records import ImageLike, MCQRecord, PairRecord, Record, VQARecord
from visionrl.core.data.shapes import TEMPLATES, Question, ShapesWorld, blind_baseline
from visionrl.core.data.shapes_scene import Scene, Shape, caption, render, sample_scene
from visionrl.core.data.validate import DEFAULT_MAX_PIXELS, DataError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "TEMPLATES",
    "DataError",
    "ImageLike",
    "MCQRecord",
    "PairRecord",
    "Question",
    "Record",
    "Scene",
    "Shape",
    "ShapesWorld",
    "VQARecord",
    "blind_baseline",
    "caption",
    "load_records",
    "render",
    "sample_scene",
    "write_folder",
]

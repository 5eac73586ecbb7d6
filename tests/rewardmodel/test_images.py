"""Image references: a split zip read through its parts at any boundary, members found whatever the top folder,
and prompts that load references."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from visionrl.core.data.records import PairRecord
from visionrl.rewardmodel.images import BytesImage, FileImage, PartsReader, ZipImage, find_member, pair_prompt

from .conftest import png


@pytest.mark.parametrize("cuts", [(1,), (7, 8), (3, 20, 21)])
def test_parts_reader_reads_and_seeks_across_part_boundaries(tmp_path, cuts):
    data = bytes(range(32))
    bounds = [0, *cuts, len(data)]
    parts = []
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        (p := tmp_path / f"part_{k}").write_bytes(data[a:b])
        parts.append(p)
    reader = PartsReader(tuple(parts))
    assert reader.read() == data
    reader.seek(5)
    assert reader.read(10) == data[5:15] and reader.tell() == 15
    reader.seek(-4, 2)
    assert reader.read() == data[-4:]
    reader.close()


def test_find_member_whatever_the_top_folder():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("MMPR-v1.2/images/ai2d/1.png", b"x")
        z.writestr("other/2.png", b"y")
    archive = zipfile.ZipFile(buf)
    assert find_member(archive, "MMPR-v1.2/images/ai2d/1.png") == "MMPR-v1.2/images/ai2d/1.png"
    assert find_member(archive, "images/ai2d/1.png") == "MMPR-v1.2/images/ai2d/1.png"  # top folder added
    assert find_member(archive, "repo/other/2.png") == "other/2.png"  # leading folder dropped
    assert find_member(archive, "images/ai2d/3.png") is None


def test_pair_prompt_loads_every_kind_of_reference(tmp_path):
    (tmp_path / "a.png").write_bytes(png((1, 2, 3)))
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("d/b.png", png((4, 5, 6)))
    images = [Image.new("RGB", (4, 4), (7, 8, 9)), FileImage(tmp_path / "a.png"), BytesImage(png((10, 11, 12))),
              ZipImage((tmp_path / "z.zip",), "d/b.png"), str(tmp_path / "a.png")]
    prompt = pair_prompt(PairRecord("p", images, "Which?", "a", "b"))
    assert [im.getpixel((0, 0)) for im in prompt.images] == [(7, 8, 9), (1, 2, 3), (10, 11, 12), (4, 5, 6), (1, 2, 3)]
    assert prompt.content[-1] == "Which?" and len(prompt.content) == 6

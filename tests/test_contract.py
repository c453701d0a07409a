"""The output contract in one place: the docs page matches it, stages' arrays follow it, and two output roots
can be compared against it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from matchflow.pipeline import Pipeline, PipelineError
from matchflow.stages.base import FrameStage
from matchflow.storage import arrays as zarr_io
from matchflow.storage import contract
from matchflow.storage.arrays import ArraySpec
from matchflow.storage.compare import compare_outputs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.tables import write_part
from matchflow.video import VideoInfo

ROOT = Path(__file__).resolve().parents[1]


def test_docs_page_is_generated_from_the_contract():
    assert (ROOT / "docs" / "contract.md").read_text() == contract.describe(), (
        "docs/contract.md is stale: python -m matchflow.storage.contract > docs/contract.md")


def test_arrays_of_the_contract():
    assert contract.array_contract("features_resnet34").dtype == "float16"
    assert contract.array_contract("masks").dtype == "int16"
    with pytest.raises(KeyError, match="not in the output contract"):
        contract.array_contract("features")  # a family needs its member's name

    class WrongDtype(FrameStage):
        name = "wrong"
        writes = ("arrays/topview_cc",)

        def array_specs(self, video):
            return {"topview_cc": ArraySpec((224, 224, 3), "float32")}

        def process(self, batch):
            pass

    pipe = Pipeline([WrongDtype()])
    with pytest.raises(PipelineError, match="stores it as uint8"):
        pipe.array_specs(VideoInfo("v.mp4", 10, 25.0, 64, 36))


def _output(root: Path, x1: float, mask: int) -> Path:
    layout = OutputLayout.at(str(root))
    write_part(layout, "players", "gid", "game", 1, 0, {
        "frame": np.array([0, 0], np.int32), "t": np.zeros(2), "det": np.array([0, 1], np.int16),
        "x1": np.array([x1, np.nan], np.float32)})
    url = layout.zarr("gid")
    zarr_io.open_game_group(url, mode="w").attrs.update({"game": "game", "contract_version": 1})
    zarr_io.create_half(url, 1, 2, {"masks": ArraySpec((2, 2), "int16")}, 2, {"sampled_frames": 2})
    zarr_io.write_frames(url, 1, "masks", 0, np.full((2, 2, 2), mask, np.int16))
    (root / "manifests").mkdir()
    (root / "manifests" / "gid.json").write_text(json.dumps(
        {"status": "committed", "rows": {"players": 2}, "run_id": str(root), "finished_at": str(x1)}))
    return root


def test_compare_outputs_finds_every_difference(tmp_path):
    a = _output(tmp_path / "a", 1.0, 1)
    assert compare_outputs(a, _output(tmp_path / "b", 1.0, 1)) == []  # run id and times are not compared
    diffs = compare_outputs(a, _output(tmp_path / "c", 2.0, 3))
    assert any("players" in d and "'x1' differs" in d for d in diffs)
    assert any(d.endswith("1/masks: values differ") for d in diffs)

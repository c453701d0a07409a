"""Game-level stages: the chain check, typed parameters, and a stage run once per half through the real flow."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from matchflow.config import ConfigError, PipelineConfig, load_config
from matchflow.flows.corpus import run_corpus
from matchflow.pipeline import Pipeline, PipelineError, build_pipeline
from matchflow.stages.base import FrameStage, GameStage, HalfData, StageParamsError
from matchflow.stages.detection import DetectionStage
from matchflow.stages.frames import FramesStage
from matchflow.storage.query import connect
from tests.stages import BoxLinkStage, link_boxes

LINK = "tests.stages:BoxLinkStage"


class _ReadsTrack(FrameStage):
    name = "reads_track"
    reads: ClassVar = ("players.track",)
    writes: ClassVar = ("players.team",)

    def process(self, batch):
        pass


class _WritesArray(GameStage):
    name = "writes_array"
    reads: ClassVar = ("players.x1",)
    writes: ClassVar = ("arrays/topview_cc",)

    def process_half(self, half: HalfData) -> None:
        pass


def test_game_stages_run_after_frame_stages_and_their_chain_is_checked():
    pipe = Pipeline([FramesStage(), BoxLinkStage(), DetectionStage()])  # listed first, runs after the chunks
    assert [s.name for s in pipe.frame_stages] == ["frames", "detection"]
    assert [s.name for s in pipe.game_stages] == ["box_link"]
    assert pipe.tables == ["frames", "players", "ball", "poses"]
    with pytest.raises(PipelineError, match="reads 'players.x1', which no earlier stage writes"):
        Pipeline([FramesStage(), BoxLinkStage()])
    with pytest.raises(PipelineError, match="frame-level stage 'reads_track' reads 'players.track', which game-level "
                                            "stage 'box_link' writes"):
        Pipeline([FramesStage(), DetectionStage(), BoxLinkStage(), _ReadsTrack()])
    with pytest.raises(PipelineError, match="adds columns to the rows"):
        Pipeline([FramesStage(), DetectionStage(), _WritesArray()])


def test_stage_classes_by_import_path_and_typed_parameters():
    cfg = PipelineConfig(stages=["frames", "detection", LINK], stage_params={"box_link": {"min_iou": 0.5}})
    pipe = build_pipeline(cfg)
    assert pipe.game_stages[0].params.min_iou == 0.5
    with pytest.raises(PipelineError, match="cannot be imported"):
        build_pipeline(PipelineConfig(stages=["frames", "tests.stages:Nothing"]))
    with pytest.raises(StageParamsError, match=r"stage_params\.box_link\.min_iou: Input should be less than or equal"):
        BoxLinkStage({"min_iou": 2})
    # validated with the run configuration, before any work; the error names the stage and the field
    with pytest.raises(ConfigError, match=r"stage_params\.box_link\.min_iou"):
        load_config(None, stages=["frames", "detection", LINK], stage_params={"box_link": {"min_iou": "x"}})
    with pytest.raises(ConfigError, match=r"stage_params\.detection\.player_treshold: unknown parameter"):
        load_config(None, stages=["frames", "detection"], stage_params={"detection": {"player_treshold": 0.3}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from matchflow.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("game-stage-corpus")
    synthesize_corpus(root, games=1, halves=2, seconds=3.0, seed=8, width=640, height=360)
    return root


@pytest.mark.e2e
def test_a_game_level_stage_runs_once_per_half_over_all_its_chunks(corpus, tmp_path, prefect_api):
    out = tmp_path / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=2, batch_frames=2, retries=0, memory_limit="3GiB",
                         stages=["frames", "detection", LINK],
                         stage_params={"detection": {"input_height": 360}, "box_link": {"min_iou": 0.1}})
    summary = run_corpus(str(corpus), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    assert summary.stage_seconds["box_link"] > 0
    db = connect(str(out))
    players = db.execute("SELECT half, frame, det, x1, y1, x2, y2, track FROM players ORDER BY half, frame, det").df()
    assert len(players) > 0 and players.track.notna().all()
    for half in (1, 2):
        p = players[players.half == half]
        assert p.frame.nunique() == 6  # 3 s at 2 fps: three chunks of two frames
        # the tracks the stage wrote are those of the whole half linked in order, across the chunk borders
        expected = link_boxes(p.frame.to_numpy(), p[["x1", "y1", "x2", "y2"]].to_numpy(np.float64), 0.1)
        np.testing.assert_array_equal(p.track.to_numpy(), expected)
        assert p.groupby("track").frame.nunique().max() > 2  # some track spans more than one chunk
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["stages"]["box_link"] == "1" and manifest["rows"]["players"] == len(players)
    assert "box_link" in manifest["seconds"]

    # a forced rerun writes version 1 beside version 0, then removes version 0: the same rows and tracks, none twice
    again = run_corpus(str(corpus), str(out), cfg, force=True)
    assert len(again.committed) == 1
    names = {p.name for p in (out / "tables" / "players").rglob("*.parquet")}
    assert names and all(n.startswith("v1-") for n in names)
    db = connect(str(out))  # a connection reads the manifests once: a new one sees the new version
    rerun = db.execute("SELECT half, frame, det, track FROM players ORDER BY half, frame, det").df()
    assert len(rerun) == len(players)
    np.testing.assert_array_equal(rerun.track.to_numpy(), players.track.to_numpy())

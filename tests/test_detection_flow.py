"""The detection stage through the real corpus flow (Dask LocalCluster, 2 workers) on rendered broadcast video,
with the shipped detector weights."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import zarr

from matchflow.config import PipelineConfig
from matchflow.flows.corpus import run_corpus
from matchflow.models.detection.metric import box_iou
from matchflow.models.weights import REGISTRY
from matchflow.stages.detection import DetectionStage
from matchflow.storage.query import connect
from matchflow.video import sample_indices

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from matchflow.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("det-corpus")
    (folder,) = synthesize_corpus(root, games=1, halves=1, seconds=4.0, seed=5, width=640, height=360)
    return root, folder


def test_detection_stage_in_the_flow(corpus, tmp_path, prefect_api):
    root, folder = corpus
    out = tmp_path / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=4, retries=0, memory_limit="3GiB",
                         stages=["frames", "detection"])
    summary = run_corpus(str(root), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    db = connect(str(out))
    players = db.execute("SELECT * FROM players ORDER BY frame, det").df()
    poses = db.execute("SELECT * FROM poses ORDER BY frame, det").df()
    frames = db.execute("SELECT frame, video_frame FROM frames ORDER BY frame").df()
    sampled = list(sample_indices(100, 25.0, 2.0))
    assert list(frames.video_frame) == sampled

    # players: det numbered 0..n-1 per frame by descending score, boxes in the 640x360 image
    assert len(players) > 0
    for _, g in players.groupby("frame"):
        assert list(g.det) == list(range(len(g)))
        assert (np.diff(g.score.to_numpy()) <= 1e-6).all()
    assert ((players.score >= 0) & (players.score <= 1)).all()
    assert set(players.cls.astype(str)) <= {"player", "goalkeeper", "referee"}
    assert (players.x2 > players.x1).all() and (players.y2 > players.y1).all()
    # at most one ball per frame, in the image, scored at least the default threshold
    ball = db.execute("SELECT frame, x, y, score FROM ball").df()
    assert ball.frame.is_unique
    assert ((ball.x >= 0) & (ball.x < 640) & (ball.y >= 0) & (ball.y < 360)).all()
    assert (ball.score >= 0.3).all()
    # one pose per player, 17 COCO keypoints as x, y, score
    assert list(zip(poses.frame, poses.det)) == list(zip(players.frame, players.det))
    kp = np.stack(poses.keypoints.to_numpy()).reshape(-1, 17, 3)
    assert ((kp[..., 2] >= 0) & (kp[..., 2] <= 1)).all()
    assert np.isnan(kp[..., 0][kp[..., 2] == 0]).all()

    # the people of the ground truth are found (visible people at least 24 px tall)
    truth = pd.read_parquet(folder / "1_gt_players.parquet")
    found = total = 0
    for k, video_frame in enumerate(sampled):
        gt = truth[(truth.frame == video_frame) & (truth.visible_fraction > 0.6) & (truth.y2 - truth.y1 >= 24)]
        pred = players[players.frame == k]
        if len(gt) == 0:
            continue
        iou = box_iou(gt[["x1", "y1", "x2", "y2"]].to_numpy(), pred[["x1", "y1", "x2", "y2"]].to_numpy())
        found += int((iou.max(axis=1) >= 0.5).sum()) if iou.size else 0
        total += len(gt)
    assert total > 20 and found / total >= 0.6, (found, total)

    # masks: one instance map per sampled frame; ids are det + 1 of that frame's players
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    group = zarr.open_group(str(next((out / "arrays").glob("*.zarr"))), mode="r")
    masks = group["1"]["masks"]
    assert masks.shape[0] == len(sampled)
    from matchflow.models.detection.detector import DEFAULT_INPUT_HEIGHT

    assert masks.attrs["native_pixels_per_mask_pixel"] == pytest.approx(4 * 360 / DEFAULT_INPUT_HEIGHT)
    m = masks[:]
    for k in range(len(sampled)):
        ids = set(np.unique(m[k]).tolist()) - {0}
        n = int((players.frame == k).sum())
        assert ids <= set(range(1, n + 1))
    assert (m > 0).any()
    assert manifest["model_checksums"]["deepsportlab_mobilenetv2"] == REGISTRY["deepsportlab_mobilenetv2"][1]
    assert manifest["model_checksums"]["deepsportlab_box_refiner"] == REGISTRY["deepsportlab_box_refiner"][1]
    assert manifest["stages"]["detection"] == DetectionStage.version == "2"


def test_detection_stage_rejects_unknown_parameters():
    from matchflow.stages.detection import DetectionStage

    with pytest.raises(ValueError, match="treshold"):
        DetectionStage({"player_treshold": 0.5})
    with pytest.raises(ValueError, match="resnet50 needs `weights`"):
        DetectionStage({"backbone": "resnet50"})


def test_frames_without_people_write_no_rows():
    """A crowd shot or an empty frame: the stage writes empty tables (no error), its masks stay background."""
    from matchflow.pipeline import build_pipeline
    from matchflow.stages.base import Batch, HalfContext
    from matchflow.video import VideoInfo

    pipe = build_pipeline(PipelineConfig(stages=["frames", "detection"], stage_params={"detection": {"input_height": 180}}))
    pipe.setup("cpu")
    ctx = HalfContext("g", "g", 1, VideoInfo("x", 100, 25.0, 320, 180), 2.0)
    frames = np.array([0, 1], np.int32)
    batch = Batch(ctx, frames, frames * 12, frames * 0.5, np.full((2, 180, 320, 3), 90, np.uint8))
    pipe.run(batch, {})
    players = batch.tables["players"]
    assert len(players["frame"]) == 0 and len(batch.tables["poses"]["frame"]) == 0
    assert not batch.arrays["masks"].any()

"""The calibration stage through the real corpus flow (Dask LocalCluster, 2 workers) on rendered broadcast video."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from matchflow.config import PipelineConfig
from matchflow.evaluation import evaluate_calibration
from matchflow.flows.corpus import run_corpus
from matchflow.pipeline import build_pipeline
from matchflow.storage.query import connect
from matchflow.storage.soccernet import write_ccbv
from matchflow.video import sample_indices

pytestmark = pytest.mark.e2e


def _config(**kw) -> PipelineConfig:
    base = dict(workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="3GiB",
                stages=["frames", "calibration"])
    base.update(kw)
    return PipelineConfig(**base)


@pytest.fixture(scope="module")
def heldout_corpus(tmp_path_factory):
    from matchflow.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("calib-corpus")
    (folder,) = synthesize_corpus(root, games=1, halves=1, seconds=4.0, seed=11, width=640, height=360,
                                  cameras="heldout")
    return root, folder


def test_calibration_stage_in_the_flow(heldout_corpus, tmp_path, prefect_api):
    root, folder = heldout_corpus
    out = tmp_path / "out"
    summary = run_corpus(str(root), str(out), _config())
    assert not summary.failed and len(summary.committed) == 1
    cal = connect(str(out)).execute(
        "SELECT c.frame, c.homography, c.homography_inv, c.score, c.valid, f.video_frame "
        "FROM calibration c JOIN frames f USING (game_id, half, frame) ORDER BY c.frame"
    ).df()
    assert list(cal.video_frame) == list(sample_indices(100, 25.0, 2.0))  # one row per sampled frame
    assert cal.valid.mean() >= 0.75
    assert cal[~cal.valid].homography.isna().all()  # invalid frames carry no made-up homography
    assert ((cal.score >= 0) & (cal.score <= 1)).all()
    report = evaluate_calibration(str(out), str(root), min_pitch_fraction=0.2)
    assert report["frames"] == len(cal)
    assert report["iou_part_mean"] > 0.8 and report["iou_entire_mean"] > 0.7, report
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["stages"]["calibration"] == "2"  # 2: with the native-resolution fit
    assert len(manifest["model_checksums"]["calibration_dictionary"]) == 64


def test_released_ccbv_calibrations_skip_the_computation(heldout_corpus, tmp_path, prefect_api):
    root, folder = heldout_corpus
    truth = pd.read_parquet(folder / "1_gt_frames.parquet")
    picked = sample_indices(len(truth), 25.0, 2.0)
    hs = np.stack([np.asarray(truth.homography[i]).reshape(3, 3) for i in picked])
    conf = np.where(np.arange(len(picked)) == 2, 0.1, 0.95)  # one frame below the threshold
    write_ccbv(folder / "1_field_calib_ccbv.json", hs, (640, 360), conf)
    try:
        out = tmp_path / "released"
        cfg = _config(stage_params={"calibration": {"use_released": True}})
        summary = run_corpus(str(root), str(out), cfg)
        assert not summary.failed
        cal = connect(str(out)).execute("SELECT frame, homography, valid, score FROM calibration ORDER BY frame").df()
        assert list(cal.valid) == [i != 2 for i in range(len(picked))]
        for i, row in cal.iterrows():
            if row.valid:
                got = np.asarray(row.homography).reshape(3, 3)
                np.testing.assert_allclose(got / got[2, 2], hs[i] / hs[i][2, 2], rtol=1e-6, atol=1e-9)
    finally:
        (folder / "1_field_calib_ccbv.json").unlink()


def test_bad_calibration_parameters_fail_before_any_work():
    with pytest.raises(ValueError, match="stage_params.calibration.segmenter"):
        build_pipeline(_config(stage_params={"calibration": {"segmenter": "magic"}}))
    with pytest.raises(ValueError, match="unknown parameter"):
        build_pipeline(_config(stage_params={"calibration": {"thresh": 1}}))

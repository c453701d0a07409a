"""The detector's second-stage box refiner: features, tree export, file format, and its effect on real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor

from matchflow.models.detection.box_refine import FEATURES, BoxRefiner, box_features, load_box_refiner
from matchflow.models.detection.detector import Detector, load_box_refiner_weights
from matchflow.models.weights import WeightsLoadError
from matchflow.training.detection.box_refiner import (
    Samples,
    collect,
    export_trees,
    fit_box_refiner,
    mean_iou,
    yolo_frames,
)

SOCCER = Path(__file__).resolve().parents[2] / "shared" / "data" / "soccer-players-detection"


def _person(masks: np.ndarray, ident: int, rows: slice, cols: slice) -> None:
    masks[rows, cols] = ident


def test_features_measure_mask_and_keypoint_extents_in_box_heights() -> None:
    masks = np.zeros((50, 80), np.int16)
    _person(masks, 1, slice(10, 20), slice(5, 8))  # mask cells rows 10..19, columns 5..7
    boxes = np.array([[20.0, 40.0, 32.0, 80.0], [100.0, 100.0, 110.0, 130.0]])  # second: no mask, no keypoints
    kp = np.full((2, 17, 3), np.nan)
    kp[:, :, 2] = 0.0
    kp[0, :3] = [[22.0, 42.0, 0.9], [30.0, 60.0, 0.8], [26.0, 78.0, 0.5]]
    kp[0, 3] = [0.0, 0.0, 0.05]  # below the score threshold: ignored
    f = box_features(boxes, np.array([0.9, 0.4]), kp, masks, stride=4, scale=1.0)
    h = 40.0
    # native extents at scale 1: x from 5 * 4 = 20 to 8 * 4 - 1 = 31, y from 40 to 79
    np.testing.assert_allclose(f[0, :4], [(20 - 20) / h, (40 - 40) / h, (31 - 32) / h, (79 - 80) / h])
    np.testing.assert_allclose(f[0, 4:8], [(22 - 20) / h, (42 - 40) / h, (30 - 32) / h, (78 - 80) / h])
    np.testing.assert_allclose(f[0, [8, 10, 11, 12]], [12 / 40, 0.9, 30 * 16 / (12 * 40), 3])
    assert np.all(f[1, :8] == 0) and f[1, 11] == 0 and f[1, 12] == 0
    # half the working scale: every mask cell covers twice the native pixels, shifted by the pixel-centre rule
    g = box_features(boxes * 2, np.array([0.9, 0.4]), kp * [2, 2, 1], masks, stride=4, scale=0.5)
    x1 = 5 * 8 + 0.5 / 0.5 - 0.5
    assert g[0, 0] == pytest.approx((x1 - 40) / 80)
    assert g[0, 9] == pytest.approx(f[0, 9])  # height in network pixels: the same person at the same scale


def test_exported_trees_predict_what_scikit_learn_predicts(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, len(FEATURES)))
    y = np.sin(x[:, 0]) + 0.3 * x[:, 4] * (x[:, 9] > 0) + rng.normal(0, 0.05, 400)
    model = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0).fit(x, y)
    trees = export_trees(model)
    xt = rng.normal(size=(100, len(FEATURES)))
    np.testing.assert_allclose(trees.predict(xt), model.predict(xt), rtol=0, atol=1e-9)
    refiner = BoxRefiner({e: trees for e in ("x1", "y1", "x2", "y2")}, max_shift=0.2)
    refiner.save(tmp_path / "r.npz")
    back = load_box_refiner(tmp_path / "r.npz")
    boxes = np.tile([[10.0, 10.0, 20.0, 40.0]], (100, 1))
    np.testing.assert_array_equal(back.refine(boxes, xt), refiner.refine(boxes, xt))
    shift = (refiner.refine(boxes, xt) - boxes) / 30.0
    assert np.abs(shift).max() <= 0.2 + 1e-6  # corrections are bounded


def test_a_file_that_is_no_refiner_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-refiner.npz"
    np.savez(bad, features=np.array(["other"]))
    with pytest.raises(WeightsLoadError, match="not-a-refiner.npz"):
        load_box_refiner_weights(str(bad))
    with pytest.raises(WeightsLoadError, match="missing.npz"):
        load_box_refiner_weights(str(tmp_path / "missing.npz"))


def test_the_shipped_refiner_fits_real_boxes_better_than_the_network() -> None:
    """Real broadcast frames none of the refiner's fitting saw (the soccer set's validation split)."""
    detector = Detector()
    frames = list(yolo_frames(SOCCER, "valid"))[:6]
    s = collect(detector, frames)
    assert len(s) > 60
    refined = detector.box_refiner
    assert refined is None  # Detector() alone decodes the network's boxes
    shipped, _, _ = load_box_refiner_weights(None)
    better = shipped.refine(s.boxes, s.features).astype(np.float64)
    assert mean_iou(better, s.truth) > mean_iou(s.boxes, s.truth) + 0.01
    # the detector applies it when given one
    detector.box_refiner = shipped
    d = detector.detect(frames[0][1][None])[0]
    assert not np.allclose(d.boxes, Detector().detect(frames[0][1][None])[0].boxes)


def test_fitting_needs_enough_matches() -> None:
    few = Samples(np.zeros((10, len(FEATURES))), np.tile([[0.0, 0, 10, 30]], (10, 1)), np.tile([[1.0, 0, 10, 30]], (10, 1)))
    with pytest.raises(ValueError, match="too few"):
        fit_box_refiner(few)


def _small_yolo_root(tmp: Path, frames: int) -> Path:
    """A Roboflow YOLO root whose ``valid`` split holds the first ``frames`` real validation frames."""
    import shutil

    root = tmp / "soccer"
    for sub in ("images", "labels"):
        (root / "valid" / sub).mkdir(parents=True)
    shutil.copy(SOCCER / "data.yaml", root / "data.yaml")
    for image in sorted((SOCCER / "valid" / "images").iterdir())[:frames]:
        shutil.copy(image, root / "valid" / "images" / image.name)
        label = SOCCER / "valid" / "labels" / f"{image.stem}.txt"
        shutil.copy(label, root / "valid" / "labels" / label.name)
    return root


def test_train_box_refiner_command(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    root = _small_yolo_root(tmp_path, 4)
    out = tmp_path / "refiner.npz"
    run = subprocess.run([sys.executable, "-m", "matchflow.cli", "train", "box-refiner", "--out", str(out),
                          "--train", f"{root}:valid"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    fitted = report["sets"][f"{root}:valid"]
    assert fitted["matched"] >= 50 and fitted["mean_iou_refined"] > fitted["mean_iou_detector"]
    load_box_refiner(out)
    bad = subprocess.run([sys.executable, "-m", "matchflow.cli", "train", "box-refiner", "--out", str(out),
                          "--train", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert bad.returncode == 2 and "nowhere" in bad.stderr


def test_the_stage_records_the_refiner_it_uses(tmp_path: Path) -> None:
    from matchflow.models.weights import REGISTRY
    from matchflow.stages.detection import DetectionStage

    assert DetectionStage().model_checksums()["deepsportlab_box_refiner"] == REGISTRY["deepsportlab_box_refiner"][1]
    assert "deepsportlab_box_refiner" not in DetectionStage({"refine_boxes": False}).model_checksums()
    with pytest.raises(WeightsLoadError, match="absent.npz"):
        DetectionStage({"box_refiner": str(tmp_path / "absent.npz")}).model_checksums()

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from matchflow import cli
from matchflow.evaluation import EvaluationError, evaluate_calibration, format_calibration_report
from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.storage import manifest
from matchflow.storage.corpus import game_id
from matchflow.storage.layout import OutputLayout
from matchflow.storage.tables import write_part

SIZE = (1280, 720)
STEP = 12  # video frames between sampled frames
DX = 10.0


def _shift(dx):
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def _cams(n, offset=0):
    prior = load_camera_prior()
    names = sorted(prior)[offset : offset + n]
    return [prior[k] / prior[k][2, 2] for k in names]  # pitch -> 1280x720 image


def _write_output(root: Path, key: str, halves: dict[int, dict]) -> None:
    """One committed game; ``halves[h]`` holds ``p2i`` (N pitch->image estimates, None: no row) and ``valid``."""
    layout = OutputLayout.at(str(root))
    gid = game_id(key)
    for half, spec in halves.items():
        n = len(spec["p2i"])
        f = np.arange(n, dtype=np.int32)
        write_part(layout, "frames", gid, key, half, 0, {
            "frame": f, "t": f * 0.48, "video_frame": f * STEP,
            "width": np.full(n, SIZE[0], np.int32), "height": np.full(n, SIZE[1], np.int32)})
        keep = [i for i in range(n) if spec["p2i"][i] is not None]
        p2i = np.array([spec["p2i"][i] for i in keep]).reshape(-1, 3, 3)
        i2p = np.linalg.inv(p2i) if len(keep) else p2i
        write_part(layout, "calibration", gid, key, half, 0, {
            "frame": f[keep], "t": f[keep] * 0.48, "homography": i2p.reshape(-1, 9),
            "homography_inv": p2i.reshape(-1, 9), "score": np.full(len(keep), 0.9, np.float32),
            "valid": np.asarray(spec["valid"], bool)[keep]})
    manifest.write_manifest(layout, gid, {"status": "committed", "game": key})


def _write_gt(root: Path, key: str, half: int, p2i: list, pitch_fraction: list, shot: list | None = None) -> None:
    folder = root / key
    folder.mkdir(parents=True, exist_ok=True)
    n = len(p2i)
    h_inv = [np.asarray(h, float).ravel().tolist() for h in p2i]
    h = [np.linalg.inv(np.asarray(m, float)).ravel().tolist() for m in p2i]
    cols = {"frame": pa.array(np.arange(n, dtype=np.int32) * STEP), "homography": h, "homography_inv": h_inv,
            "pitch_fraction": pa.array(pitch_fraction, pa.float32())}
    if shot is not None:
        cols["shot"] = shot
    pq.write_table(pa.table(cols), folder / f"{half}_gt_frames.parquet")


@pytest.fixture()
def corpus(tmp_path):
    out, gt = tmp_path / "out", tmp_path / "gt"
    # game A: one half with a good frame, an invalid one, a crowd shot marked valid, a pitch-less frame left invalid
    # and a main frame showing too little pitch to be evaluated (0.1 < 0.2) but not a negative either
    a = _cams(5)
    _write_gt(gt, "league/season/game A", 1, a, [0.3, 0.3, 0.3, 0.01, 0.1], ["main", "main", "crowd", "main", "main"])
    _write_output(out, "league/season/game A", {1: {"p2i": a, "valid": [True, False, True, False, True]}})
    # game B: half 1 perfect, half 2 shifted by DX metres along x; no shot column (all main)
    b1, b2 = _cams(3, 5), _cams(3, 8)
    _write_gt(gt, "league/season/game B", 1, b1, [0.5] * 3)
    _write_gt(gt, "league/season/game B", 2, b2, [0.5] * 3)
    _write_output(out, "league/season/game B", {
        1: {"p2i": b1, "valid": [True] * 3},
        2: {"p2i": [h @ _shift(DX) for h in b2], "valid": [True] * 3}})
    # game C: in the output only; game D: in the ground truth only
    _write_output(out, "league/season/game C", {1: {"p2i": _cams(2), "valid": [True, True]}})
    _write_gt(gt, "league/season/game D", 1, _cams(2), [0.5, 0.5])
    return out, gt


def test_evaluate_calibration(corpus):
    out, gt = corpus
    rep = evaluate_calibration(str(out), str(gt), min_pitch_fraction=0.2)
    a = rep["games"]["league/season/game A"]
    assert a["frames"] == 2  # the good and the invalid main frames
    assert a["iou_part_mean"] == pytest.approx(0.5) and a["iou_entire_mean"] == pytest.approx(0.5)
    assert a["valid_rate"] == 0.5
    assert a["negative_frames"] == 2 and a["false_valid_rate"] == 0.5  # the crowd shot marked valid

    b = rep["games"]["league/season/game B"]
    analytic = (105 - DX) / (105 + DX)
    assert b["frames"] == 6 and b["valid_rate"] == 1.0
    assert b["iou_entire_mean"] == pytest.approx((3 + 3 * analytic) / 6, abs=1e-6)
    assert b["iou_entire_median"] == pytest.approx((1 + analytic) / 2, abs=1e-6)
    assert b["negative_frames"] == 0 and b["false_valid_rate"] is None
    assert 0.0 < b["iou_part_mean"] < 1.0

    assert rep["frames"] == 8
    assert rep["valid_rate"] == pytest.approx(7 / 8)
    assert rep["iou_entire_mean"] == pytest.approx((1 + 0 + 3 + 3 * analytic) / 8, abs=1e-6)
    assert rep["false_valid_rate"] == 0.5
    assert rep["matched_frames"] == 11 and rep["unmatched_frames"] == 2  # game C has no ground truth
    assert rep["games_without_output"] == ["league/season/game D"]
    assert "IoU 0" in rep["note"]
    json.dumps(rep)  # JSON-able
    text = format_calibration_report(rep)
    assert "league/season/game B" in text and "all" in text


def test_perfect_estimates_score_one(tmp_path):
    cams = _cams(4, 20)
    _write_gt(tmp_path / "gt", "g", 1, cams, [0.4] * 4, ["main"] * 4)
    _write_output(tmp_path / "out", "g", {1: {"p2i": [h * -2.0 for h in cams], "valid": [True] * 4}})
    rep = evaluate_calibration(str(tmp_path / "out"), str(tmp_path / "gt"))
    assert rep["frames"] == 4 and rep["valid_rate"] == 1.0
    for k in ("iou_part_mean", "iou_part_median", "iou_entire_mean", "iou_entire_median"):
        assert rep[k] == pytest.approx(1.0, abs=1e-9)


def test_missing_calibration_rows_count_as_invalid(tmp_path):
    cams = _cams(2)
    _write_gt(tmp_path / "gt", "g", 1, cams, [0.4, 0.4])
    _write_output(tmp_path / "out", "g", {1: {"p2i": [cams[0], None], "valid": [True, True]}})
    rep = evaluate_calibration(str(tmp_path / "out"), str(tmp_path / "gt"))
    assert rep["frames"] == 2 and rep["valid_rate"] == 0.5
    assert rep["iou_part_mean"] == pytest.approx(0.5) and rep["iou_entire_median"] == pytest.approx(0.5)


def test_errors_name_the_path(corpus, tmp_path):
    out, gt = corpus
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EvaluationError, match=str(empty)):
        evaluate_calibration(str(out), str(empty))
    no_cal = tmp_path / "no-cal"
    layout = OutputLayout.at(str(no_cal))
    write_part(layout, "frames", "g", "g", 1, 0, {"frame": np.zeros(1, np.int32), "t": np.zeros(1),
               "video_frame": np.zeros(1, np.int32), "width": [64], "height": [36]})
    manifest.write_manifest(layout, "g", {"status": "committed", "game": "g"})
    with pytest.raises(EvaluationError, match=f"{no_cal}.*no calibration table"):
        evaluate_calibration(str(no_cal), str(gt))
    with pytest.raises(EvaluationError, match="does not exist"):
        evaluate_calibration(str(tmp_path / "nope"), str(gt))


def test_cli_eval_calibration(corpus, tmp_path, capsys):
    out, gt = corpus
    report = tmp_path / "report.json"
    assert cli.main(["eval", "calibration", str(out), str(gt), "--min-pitch-fraction", "0.2",
                     "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "league/season/game A" in printed and "false valid" in printed
    data = json.loads(report.read_text())
    assert data["frames"] == 8 and data["games"]["league/season/game A"]["false_valid_rate"] == 0.5
    assert cli.main(["eval", "calibration", str(tmp_path / "nope"), str(gt)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nope") in err
    empty = tmp_path / "empty-gt"
    empty.mkdir()
    assert cli.main(["eval", "calibration", str(out), str(empty)]) == 2
    assert str(empty) in capsys.readouterr().err

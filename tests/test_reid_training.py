"""Re-identification data, metric, training and evaluation: the SoccerNet-ReID reader on files named as released,
the synthetic identities, scoped rank-1 / mAP, and `matchflow train reid` / `matchflow eval reid` through the CLI
(a resumed run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from matchflow.models.reid.metric import scoped_retrieval
from matchflow.training.reid.data import (
    DatasetError,
    concat_sets,
    parse_soccernet_name,
    read_soccernet_reid,
    read_synthetic_reid,
)


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "matchflow.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    from matchflow.synth.detection import render_detection_dataset

    root = tmp_path_factory.mktemp("reid") / "synth"
    render_detection_dataset(root, frames=16, seed=3, width=640, height=360, workers=1)
    return root


def test_scoped_retrieval_ranks_within_the_action_only():
    emb = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 0, 2]]  # items 0, 4 and 1 share a direction
    identity = np.array([7, 7, 8, 8, 9, 5])
    action = np.array([1, 1, 1, 1, 2, 1])
    query = np.array([True, False, True, False, True, False])
    r = scoped_retrieval(emb, identity, action, query)
    # query 0 (id 7): gallery of action 1 = items 1, 3, 5; item 1 is its match and ranks first. Query 2 likewise.
    # query 4 (action 2) has no gallery: left out although item 1 of action 1 looks the same
    assert r["rank1"] == 1.0 and r["mAP"] == 1.0 and r["queries"] == 2 and r["queries_without_match"] == 1
    emb2 = emb.copy()
    emb2[1] = (np.eye(4)[0] + np.eye(4)[3]) / np.sqrt(2)  # query 0's match resembles it less (0.71) ...
    emb2[5] = np.eye(4)[0]  # ... than another identity of its action does (1.0): its match ranks second
    r = scoped_retrieval(emb2, identity, action, query)
    assert r["rank1"] == 0.5 and r["mAP"] == pytest.approx((0.5 + 1.0) / 2)


def test_soccernet_names_and_folders_are_read_as_released(tmp_path):
    f = parse_soccernet_name("54404-1940-33397-5089-Player_team_right-9-014r002_00858c3b0003-775x449")
    assert (f["bbox"], f["action"], f["person"], f["frame"], f["cls"], f["height"], f["width"]) == \
        (54404, 1940, 33397, 5089, "Player_team_right", 775, 449)
    assert parse_soccernet_name("12-1940-120x60")["person"] is None  # challenge set: no identity
    with pytest.raises(DatasetError, match="not a SoccerNet-ReID file name"):
        parse_soccernet_name("frame_0001")
    game = tmp_path / "reid" / "valid" / "england_epl" / "2014-2015" / "2015-02-21 - 18-00 Chelsea 1 - 1 Burnley" / "12"
    items = [("query", 1, 0, 100, "Player_team_left"), ("gallery", 2, 0, 101, "Player_team_left"),
             ("gallery", 3, 1, 102, "Player_team_right"), ("query", 4, 1, 100, "Player_team_right"),
             ("gallery", 5, 2, 103, "Referee")]
    for sub, bbox, person, frame, cls in items:
        (game / sub).mkdir(parents=True, exist_ok=True)
        image = np.full((90, 40, 3), 40 * person, np.uint8)
        cv2.imwrite(str(game / sub / f"{bbox}-12-{person}-{frame}-{cls}-{person}-u{bbox}-90x40.png"), image)
    data = read_soccernet_reid(tmp_path / "reid", "valid", (128, 64))
    assert len(data) == 5 and data.crops.shape == (5, 128, 64, 3)
    assert data.query.tolist() == [False, False, False, True, True]  # sorted: gallery/ before query/
    assert len(set(data.identity.tolist())) == 3 and set(data.action.tolist()) == {12}
    assert sorted(data.team.tolist()) == [-1, 0, 0, 1, 1]
    with pytest.raises(DatasetError, match="no such folder"):
        read_soccernet_reid(tmp_path / "reid", "test")
    both = concat_sets([data, data])
    assert len(set(both.identity.tolist())) == 6 and len(set(both.action.tolist())) == 2


def test_synthetic_identities_are_scoped_by_scene(synthetic):
    data = read_synthetic_reid(synthetic)
    assert len(data) > 50 and data.heatmaps.shape[1:] == (17, 8, 4)
    assert len(set(data.action.tolist())) == 2  # 16 frames: two scenes of 8
    for ident in np.unique(data.identity):  # an identity lives in one scene, with one team
        sel = data.identity == ident
        assert len(set(data.action[sel].tolist())) == 1 and len(set(data.team[sel].tolist())) == 1
    assert data.heatmaps.max() > 0.5  # rendered keypoints become part maps
    assert data.query.any() and (~data.query).any()


@pytest.mark.e2e
@pytest.mark.usefixtures("prefect_api")
def test_train_reid_resumes_and_eval_reports(synthetic, tmp_path):
    out = tmp_path / "run"
    base = ["train", "reid", "--out", str(out), "--synthetic", str(synthetic), "--identities", "4", "--per-identity",
            "2", "--segment", "2", "--checkpoint-every", "2", "--eval-synthetic", str(synthetic)]
    res = _cli(*base, "--steps", "2")
    assert res.returncode == 0, res.stderr
    first = json.loads((out / "training.json").read_text())
    assert first["steps"] == 2 and first["evaluation"]["queries"] > 0
    res = _cli(*base, "--steps", "4")
    assert res.returncode == 0, res.stderr
    assert "resumed from checkpoint_0000002.pt" in res.stdout
    report = json.loads((out / "training.json").read_text())
    assert report["steps"] == 4 and report["sha256"] != first["sha256"]
    weights = out / "reid_twostream_resnet18.pt"
    res = _cli("eval", "reid", str(synthetic), "--weights", str(weights), "--json", str(tmp_path / "eval.json"))
    assert res.returncode == 0, res.stderr
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert 0 <= ev["mAP"] <= 1 and ev["sha256"] == report["sha256"] and ev["crops"] > 50
    res = _cli("train", "reid", "--out", str(out), "--synthetic", str(synthetic), "--identities", "1")
    assert res.returncode == 2 and "identities" in res.stderr and "Traceback" not in res.stderr
    res = _cli("eval", "reid", str(tmp_path), "--weights", str(weights))
    assert res.returncode == 2 and "dataset.json" in res.stderr

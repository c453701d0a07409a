"""Re-identification on real broadcast frames: does a player's nearest neighbour wear the same kit?

On the hand-labelled players of ``bench/data/reid_team_labels.json`` (152 players of 8 Bundesliga frames of
``../shared/data/soccer-players-detection/valid``, one frame per clip), each player's crop (its labelled box) is
embedded, and its nearest neighbour among the other labelled players of the same frame (cosine similarity) is
taken: the share of players whose nearest neighbour is of their team. The two-stream model gets the body-part maps
of the shipped detector's keypoints (the detection whose box overlaps the labelled one most, IoU >= 0.5).

    .venv/bin/python bench/reid_real.py [--weights FILE] [--osnet OSNET.pt] [--results bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from matchflow.models.detection.detector import Detector
from matchflow.models.detection.metric import box_iou
from matchflow.models.reid.embedder import Embedder

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "soccer-players-detection" / "valid"


def _players(image_name: str, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    rows = np.loadtxt(DATA / "labels" / (Path(image_name).stem + ".txt"), ndmin=2)
    rows = rows[rows[:, 0] == 2]
    cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", help="two-stream weights (default: the shipped ones)")
    ap.add_argument("--osnet", help="a torchreid OSNet x0.25 checkpoint to compare")
    ap.add_argument("--json", help="write the figures as JSON here")
    a = ap.parse_args()
    labels = json.loads((HERE / "data" / "reid_team_labels.json").read_text())["frames"]
    models = {"two-stream": Embedder("two-stream", a.weights), "histogram": Embedder("histogram")}
    if a.osnet:
        models["osnet_x0_25"] = Embedder("osnet_x0_25", a.osnet)
    detector = Detector()
    hits = {m: 0 for m in models}
    total = 0
    for name, teams in labels.items():
        image = cv2.cvtColor(cv2.imread(str(DATA / "images" / name)), cv2.COLOR_BGR2RGB)
        boxes = _players(name, (image.shape[1], image.shape[0]))
        idx = np.array(sorted(int(k) for k in teams))
        team = np.array([teams[str(i)] for i in idx])
        det = detector.detect(image[None])[0]
        keypoints = np.full((len(idx), 17, 3), np.nan)
        if len(det.boxes):
            iou = box_iou(boxes[idx], det.boxes)
            best = iou.argmax(axis=1)
            ok = iou[np.arange(len(idx)), best] >= 0.5
            keypoints[ok] = det.keypoints[best[ok]]
        for m, emb in models.items():
            e = emb.embed(image, boxes[idx], keypoints if emb.needs_parts else None)
            sim = e @ e.T
            np.fill_diagonal(sim, -np.inf)
            hits[m] += int((team[sim.argmax(axis=1)] == team).sum())
        total += len(idx)
    result = {m: {"same_team_nearest_neighbour": round(hits[m] / total, 4), "players": total} for m in models}
    result["frames"] = len(labels)
    print(json.dumps(result, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

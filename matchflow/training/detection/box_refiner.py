"""Fit the box refiner (:mod:`matchflow.models.detection.box_refine`) on frames with true boxes.

The shipped detector runs on each frame without refinement; its boxes are matched one-to-one to the true ones
(Hungarian, IoU >= 0.5); each match gives the features of :func:`box_features` and, per edge, the true edge minus
the detected one in box heights. One scikit-learn ``GradientBoostingRegressor`` per edge (squared error, seeded)
is fitted on them and exported as arrays (:class:`TreeEnsemble`), so inference needs numpy only.

Frames come from synthetic games written by ``matchflow synth`` (each half's video sampled at ``fps``, true
boxes of the people at least ``min_visible`` visible) and from Roboflow YOLO splits (real frames, boxes only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from matchflow.models.detection.box_refine import EDGES, FEATURES, BoxRefiner, TreeEnsemble
from matchflow.models.detection.detector import Detector, detection_features
from matchflow.models.detection.metric import box_iou

__all__ = ["Samples", "synthetic_game_frames", "yolo_frames", "collect", "fit_box_refiner", "export_trees",
           "paired_iou", "mean_iou", "train_box_refiner"]


@dataclass
class Samples:
    """Matched detections: ``features`` (N, F), detected ``boxes`` and ``truth`` (N, 4) native pixels."""

    features: np.ndarray
    boxes: np.ndarray
    truth: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    @staticmethod
    def concat(parts: Iterable[Samples]) -> Samples:
        parts = list(parts)
        if not parts:
            return Samples(np.zeros((0, len(FEATURES))), np.zeros((0, 4)), np.zeros((0, 4)))
        return Samples(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("features", "boxes", "truth")))


def synthetic_game_frames(corpus: str | Path, fps: float = 2.0, min_visible: float = 0.3
                          ) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB frame, true boxes (N, 4)) of every sampled frame of every half of a ``matchflow synth`` corpus."""
    from matchflow.video import iter_frames, probe, sample_indices

    halves = sorted(Path(corpus).rglob("*_gt_players.parquet"))
    if not halves:
        raise ValueError(f"{corpus}: no synthetic game (no *_gt_players.parquet) under it")
    for gt_path in halves:
        half = gt_path.name.split("_")[0]
        videos = sorted(gt_path.parent.glob(f"{half}_*.mp4"))
        if not videos:
            raise ValueError(f"{gt_path.parent}: no video of half {half}")
        gt = pd.read_parquet(gt_path)
        gt = gt[gt.visible_fraction >= min_visible]
        by_frame = {int(f): g[["x1", "y1", "x2", "y2"]].to_numpy(np.float64) for f, g in gt.groupby("frame")}
        info = probe(str(videos[0]))
        for idx, batch in iter_frames(str(videos[0]), sample_indices(info.n_frames, info.fps, fps), 16):
            for i, image in zip(idx, batch):
                yield f"{videos[0]}:{int(i)}", image, by_frame.get(int(i), np.zeros((0, 4)))


def yolo_frames(root: str | Path, split: str) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB frame, true boxes of the people) of a Roboflow YOLO split."""
    from matchflow.training.detection.data import read_yolo_split

    for s in read_yolo_split(root, split):
        yield s.name, s.image, np.asarray(s.boxes, np.float64).reshape(-1, 4)


def collect(detector: Detector, frames: Iterable[tuple[str, np.ndarray, np.ndarray]], min_iou: float = 0.5,
            progress: Callable[[str], None] | None = None) -> Samples:
    """Run ``detector`` (its own refiner is not applied) on ``frames`` and keep the matched detections."""
    from scipy.optimize import linear_sum_assignment

    refiner, detector.box_refiner = detector.box_refiner, None
    parts = []
    try:
        for n, (name, image, truth) in enumerate(frames):
            d = detector.detect(image[None])[0]
            if len(d.boxes) and len(truth):
                iou = box_iou(truth, d.boxes.astype(np.float64))
                r, c = linear_sum_assignment(-iou)
                ok = iou[r, c] >= min_iou
                r, c = r[ok], c[ok]
                parts.append(Samples(detection_features(d)[c], d.boxes[c].astype(np.float64), truth[r]))
            if progress and (n + 1) % 50 == 0:
                progress(f"{n + 1} frames ({name})")
    finally:
        detector.box_refiner = refiner
    return Samples.concat(parts)


def _targets(s: Samples) -> np.ndarray:
    h = np.maximum(s.boxes[:, 3] - s.boxes[:, 1], 1e-3)
    return (s.truth - s.boxes) / h[:, None]


def export_trees(model: Any) -> TreeEnsemble:
    """A fitted ``GradientBoostingRegressor`` (squared error) as a :class:`TreeEnsemble`."""
    trees = [est.tree_ for est in model.estimators_[:, 0]]
    width = max(t.node_count for t in trees)

    def pad(get: Callable[[Any], np.ndarray], fill: float, dtype: type) -> np.ndarray:
        out = np.full((len(trees), width), fill, dtype)
        for i, t in enumerate(trees):
            out[i, : t.node_count] = get(t)
        return out

    init = float(np.asarray(model.init_.constant_).reshape(-1)[0])
    return TreeEnsemble(
        init=init, rate=float(model.learning_rate),
        feature=pad(lambda t: np.where(t.children_left >= 0, t.feature, -1), -1, np.int64),
        threshold=pad(lambda t: t.threshold, 0.0, np.float64),
        left=pad(lambda t: t.children_left, -1, np.int64),
        right=pad(lambda t: t.children_right, -1, np.int64),
        value=pad(lambda t: t.value[:, 0, 0], 0.0, np.float64),
    )


def fit_box_refiner(samples: Samples, seed: int = 0, n_trees: int = 200, depth: int = 4,
                    rate: float = 0.05) -> BoxRefiner:
    """One gradient-boosted regressor per edge on ``samples``."""
    from sklearn.ensemble import GradientBoostingRegressor

    if len(samples) < 50:
        raise ValueError(f"{len(samples)} matched detections are too few to fit the box refiner (at least 50)")
    y = _targets(samples)
    edges = {}
    for j, e in enumerate(EDGES):
        model = GradientBoostingRegressor(n_estimators=n_trees, max_depth=depth, learning_rate=rate, subsample=0.8,
                                          random_state=seed)
        model.fit(samples.features, y[:, j])
        edges[e] = export_trees(model)
    return BoxRefiner(edges)


def paired_iou(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N,) IoU of row i of ``boxes`` with row i of ``truth`` (N, 4)."""
    iw = np.clip(np.minimum(boxes[:, 2], truth[:, 2]) - np.maximum(boxes[:, 0], truth[:, 0]), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], truth[:, 3]) - np.maximum(boxes[:, 1], truth[:, 1]), 0, None)
    inter = iw * ih
    union = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
             + (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1]) - inter)
    return inter / union


def mean_iou(boxes: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU of paired boxes (N, 4): row i of ``boxes`` against row i of ``truth``."""
    if len(boxes) == 0:
        return float("nan")
    return float(np.mean(paired_iou(boxes, truth)))


def train_box_refiner(out: str | Path, train: dict[str, Samples], held_out: dict[str, Samples], seed: int = 0
                      ) -> dict[str, Any]:
    """Fit on the union of ``train``, write ``out`` (.npz) and a JSON report beside it with the mean IoU of the
    matched boxes before and after refinement on every set."""
    from matchflow.models.weights import sha256_file

    refiner = fit_box_refiner(Samples.concat(train.values()), seed=seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    refiner.save(out, seed=str(seed))
    report: dict[str, Any] = {"weights": out.name, "sha256": sha256_file(out), "seed": seed, "sets": {}}
    for role, sets in (("train", train), ("held_out", held_out)):
        for name, s in sets.items():
            refined = refiner.refine(s.boxes, s.features)
            report["sets"][name] = {"role": role, "matched": len(s), "mean_iou_detector": mean_iou(s.boxes, s.truth),
                                    "mean_iou_refined": mean_iou(refined.astype(np.float64), s.truth)}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return report

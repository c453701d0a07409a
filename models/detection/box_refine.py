"""Second-stage refinement of the detector's player boxes from its own masks and keypoints.

The network regresses a box's width and height from stride-8 cells (:func:`decoder.decode_players`), a coarse
estimate: on synthetic broadcast frames its edges are off by about 13% of the width (log-ratio standard
deviation) and the mean IoU of matched boxes is about 0.80. The same network also gives each person an instance
mask (stride 4) and up to 17 keypoints, whose extents say where the person ends. A gradient-boosted regressor
per box edge combines the three into a correction; it is fitted by ``matchflow train box-refiner``
(:mod:`matchflow.training.detection.box_refiner`) and shipped as plain arrays of decision trees (an ``.npz``
file listed in :data:`matchflow.models.weights.REGISTRY`), evaluated here with numpy only.

Frames and units: boxes, keypoints and the returned boxes are native pixels (x1, y1, x2, y2, OpenCV
convention); the mask grid's pixel (row a, column b) covers native pixel ``((b * stride + 0.5) / scale - 0.5,
(a * stride + 0.5) / scale - 0.5)`` where ``scale`` is the working scale (network pixels per native pixel).
Every feature and every correction is measured in box heights, so the model does not depend on the frame size;
only the box height in network pixels enters as such (the mask grid is coarser for small people).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["FEATURES", "EDGES", "box_features", "TreeEnsemble", "BoxRefiner", "load_box_refiner"]

EDGES = ("x1", "y1", "x2", "y2")
FEATURES = (
    "mask_x1", "mask_y1", "mask_x2", "mask_y2",  # mask extent minus box edge, box heights (0: no mask pixel)
    "kp_x1", "kp_y1", "kp_x2", "kp_y2",  # keypoint extent minus box edge, box heights (0: under 3 keypoints)
    "aspect",  # box width / height
    "log_height",  # log of the box height in network pixels
    "score",  # detection score
    "mask_fill",  # mask area / box area
    "keypoints",  # keypoints with a score above the threshold
)
MIN_KEYPOINTS = 3
KEYPOINT_SCORE = 0.1


def box_features(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, masks: np.ndarray, stride: int,
                 scale: float) -> np.ndarray:
    """Features (P, len(FEATURES)) float64 of P detections of one frame.

    ``boxes`` (P, 4) native pixels; ``scores`` (P,); ``keypoints`` (P, 17, 3) native x, y, score; ``masks`` (h, w)
    instance ids on the decoder's grid (``i + 1`` = detection i, 0 background) of ``stride`` network pixels;
    ``scale`` network pixels per native pixel.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    p = len(boxes)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    out = np.zeros((p, len(FEATURES)))
    if p == 0:
        return out
    # mask extents in native pixels: left / top edge of the first cell, right / bottom edge of the last one
    rows, cols = np.nonzero(masks > 0)
    ids = masks[rows, cols].astype(np.int64) - 1
    keep = ids < p
    rows, cols, ids = rows[keep], cols[keep], ids[keep]
    count = np.bincount(ids, minlength=p)
    ext = np.stack([np.full(p, np.inf), np.full(p, np.inf), np.full(p, -np.inf), np.full(p, -np.inf)], 1)
    np.minimum.at(ext[:, 0], ids, cols)
    np.minimum.at(ext[:, 1], ids, rows)
    np.maximum.at(ext[:, 2], ids, cols + 1)
    np.maximum.at(ext[:, 3], ids, rows + 1)
    has_mask = count > 0
    cell = stride / scale  # native pixels per mask pixel
    offset = 0.5 / scale - 0.5
    native = ext * cell + offset
    native[:, 2:] -= 1.0  # the last native pixel of the last cell
    out[has_mask, 0:4] = (native[has_mask] - boxes[has_mask]) / h[has_mask, None]
    # keypoint extents
    kp = np.asarray(keypoints, np.float64).reshape(p, -1, 3)
    seen = (kp[:, :, 2] > KEYPOINT_SCORE) & np.isfinite(kp[:, :, 0]) & np.isfinite(kp[:, :, 1])
    n_kp = seen.sum(1)
    has_kp = n_kp >= MIN_KEYPOINTS
    if has_kp.any():
        x = np.where(seen, kp[:, :, 0], np.nan)[has_kp]
        y = np.where(seen, kp[:, :, 1], np.nan)[has_kp]
        kext = np.stack([np.nanmin(x, 1), np.nanmin(y, 1), np.nanmax(x, 1), np.nanmax(y, 1)], 1)
        out[has_kp, 4:8] = (kext - boxes[has_kp]) / h[has_kp, None]
    out[:, 8] = w / h
    out[:, 9] = np.log(h * scale)
    out[:, 10] = np.asarray(scores, np.float64).reshape(-1)
    out[:, 11] = count * cell * cell / (w * h)
    out[:, 12] = n_kp
    return out


@dataclass
class TreeEnsemble:
    """Additive regression trees: ``init + rate * sum_t value_t(leaf of x in tree t)``.

    Per tree t and node n: ``feature[t, n]`` (-1 at a leaf), ``threshold[t, n]`` (go left when
    ``x[feature] <= threshold``), ``left[t, n]`` / ``right[t, n]`` child nodes, ``value[t, n]``.
    """

    init: float
    rate: float
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        n_trees = self.feature.shape[0]
        node = np.zeros((n_trees, len(x)), np.int64)
        tree = np.arange(n_trees)[:, None]
        rows = np.arange(len(x))[None, :]
        for _ in range(self.feature.shape[1]):  # at most as many steps as nodes; stops once all are leaves
            f = self.feature[tree, node]
            inner = f >= 0
            if not inner.any():
                break
            go_left = x[rows, np.maximum(f, 0)] <= self.threshold[tree, node]
            node = np.where(inner, np.where(go_left, self.left[tree, node], self.right[tree, node]), node)
        return self.init + self.rate * self.value[tree, node].sum(0)


@dataclass
class BoxRefiner:
    """One :class:`TreeEnsemble` per box edge (:data:`EDGES`), each predicting the edge's correction in box
    heights from :func:`box_features`; ``max_shift`` bounds a correction (box heights)."""

    edges: dict[str, TreeEnsemble]
    max_shift: float = 0.3

    def refine(self, boxes: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Refined boxes (P, 4) float32, native pixels; a box never collapses below a pixel."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes.astype(np.float32)
        h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
        shift = np.stack([self.edges[e].predict(features) for e in EDGES], 1)
        out = boxes + np.clip(shift, -self.max_shift, self.max_shift) * h[:, None]
        out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1.0)
        out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1.0)
        return out.astype(np.float32)

    def save(self, path: str | Path, **meta: str) -> None:
        arrays: dict[str, np.ndarray] = {"features": np.array(FEATURES), "max_shift": np.array(self.max_shift)}
        for e, t in self.edges.items():
            arrays.update({f"{e}/init": np.array(t.init), f"{e}/rate": np.array(t.rate), f"{e}/feature": t.feature,
                           f"{e}/threshold": t.threshold, f"{e}/left": t.left, f"{e}/right": t.right,
                           f"{e}/value": t.value})
        arrays.update({f"meta/{k}": np.array(v) for k, v in meta.items()})
        with open(path, "wb") as f:  # numpy adds no suffix to an open file
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy stubs: keyword arrays


def load_box_refiner(path: str | Path) -> BoxRefiner:
    """Read a refiner written by :meth:`BoxRefiner.save`; ValueError naming the file when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            names = tuple(str(v) for v in z["features"])
            if names != FEATURES:
                raise ValueError(f"{path}: box refiner made for features {names}, this version computes {FEATURES}")
            edges = {e: TreeEnsemble(float(z[f"{e}/init"]), float(z[f"{e}/rate"]), z[f"{e}/feature"].astype(np.int64),
                                     z[f"{e}/threshold"].astype(np.float64), z[f"{e}/left"].astype(np.int64),
                                     z[f"{e}/right"].astype(np.int64), z[f"{e}/value"].astype(np.float64))
                     for e in EDGES}
            return BoxRefiner(edges, float(z["max_shift"]))
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path}: not a box refiner file ({exc})") from exc

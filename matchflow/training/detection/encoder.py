"""Training targets and losses of the DeepSportLab network (paper, Sec. 3.3, Eqs. 1 and 2).

Targets are built from a :class:`~matchflow.training.detection.data.DetectionSample` already at the network's
input resolution (pixels, OpenCV convention). PIF fields live on the stride-8 grid of
:class:`~matchflow.models.detection.network.DeepSportLabNet`: cell (i, j) predicts the keypoint at input pixel
((j + dx) * 8, (i + dy) * 8), ``dx, dy`` being its localization vector in cell units.

- **Confidence, vector, size** (per keypoint type k): the 4x4 cells nearest each keypoint ("16 neighbouring
  pixels") get confidence 1, the vector to the keypoint and its size Sigma (cells); where two keypoints of
  the same type compete for a cell the nearer one wins. Sizes: ball radius; player centre 0.1 of the box
  height; body parts the COCO per-keypoint sigma times the square root of the box area (the paper's "body
  part standard deviation values scaled according to the size of the keypoints"). At least half a cell.
- **Player centre** is the centre of the person's box, so that the box regressed there (``box_log_wh``, an
  addition to the paper) is centred on it; the person class is a target at the same cells.
- **Semantic classes and offsets** (input resolution): with instance masks, every pixel is labelled
  (background, player, ball) and player pixels get the offset (dx, dy) pixels to their player's centre.
  Sources without masks (Roboflow boxes) label what boxes make certain: background outside every box, player
  inside a central ellipse of each box (half the width, 0.8 of the height) that no other box overlaps, with
  its offset, the ball inside 0.7 of its radius; the rest is left out of the loss.
- **Unlabelled fields** (no joints: the parts head) are masked out of every loss, never taken as negatives.

Loss (Eq. 1): ``L = w_sem L_sem + w_off L_off + w_cnf L_cnf + w_loc L_loc + w_sig L_sig`` with the paper's
weights (:data:`~matchflow.models.detection.network.LOSS_WEIGHTS`), plus the two additions: box size (L1 on the
log sizes, weight of the localization) and person class (cross-entropy). L_sem is a cross-entropy over
labelled pixels, L_off an L1 over player pixels, L_cnf a binary cross-entropy over labelled cells, L_loc the
Laplace-style loss of Eq. 2 ``|vector - vector*|^2 / B^2 + log B`` over positive cells (B from the
predicted log-scale) and L_sig an L1 on Sigma over positive cells; each is a mean over the elements it
covers (the paper sums over "the keypoints present"; means keep the weights' balance across crop sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from matchflow.models.detection.metric import COCO_SIGMAS
from matchflow.models.detection.network import COCO_KEYPOINTS, INPUT_MULTIPLE, LOSS_WEIGHTS
from matchflow.training.detection.data import DetectionSample

__all__ = [
    "PIF_STRIDE",
    "IGNORE",
    "EXTRA_LOSS_WEIGHTS",
    "build_targets",
    "collate_targets",
    "deepsportlab_loss",
    "FieldTargets",
]

PIF_STRIDE = 8
IGNORE = -100  # semantic label / class label left out of the cross-entropies
# Weights of the two sub-losses this project adds to Eq. 1 (box size and person class at the player centre).
EXTRA_LOSS_WEIGHTS: dict[str, float] = {"box": 10.0, "class": 2.0}
_MIN_SIGMA = 0.5  # cells


@dataclass
class FieldTargets:
    """Targets of one PIF head on the (h, w) grid: ``confidence`` (K, h, w) 0/1, ``labelled`` (K,) whether
    the type is annotated in this sample, ``vector`` (2K, h, w) cells, ``size`` (K, h, w) cells,
    ``positive`` (K, h, w) bool."""

    confidence: np.ndarray
    labelled: np.ndarray
    vector: np.ndarray
    size: np.ndarray
    positive: np.ndarray


def _field(points: list[np.ndarray], sizes: list[np.ndarray], k: int, hw: tuple[int, int],
           labelled: np.ndarray) -> tuple[FieldTargets, np.ndarray]:
    """Splat keypoints of ``k`` types onto the grid. ``points[t]`` (M, 2) input pixels of type t (NaN rows
    are skipped); ``sizes[t]`` (M,) cells. Returns the targets and, per cell, the index of the keypoint
    that owns it (-1 none), shape (K, h, w)."""
    h, w = hw
    conf = np.zeros((k, h, w), np.float32)
    vec = np.zeros((2 * k, h, w), np.float32)
    size = np.zeros((k, h, w), np.float32)
    owner = np.full((k, h, w), -1, np.int32)
    best = np.full((k, h, w), np.inf, np.float32)
    offsets = np.arange(-1, 3)
    for t in range(k):
        for m, (p, s) in enumerate(zip(points[t], sizes[t])):
            if not np.all(np.isfinite(p)):
                continue
            gx, gy = p[0] / PIF_STRIDE, p[1] / PIF_STRIDE
            js = int(np.floor(gx)) + offsets
            is_ = int(np.floor(gy)) + offsets
            js = js[(js >= 0) & (js < w)]
            is_ = is_[(is_ >= 0) & (is_ < h)]
            if not len(js) or not len(is_):
                continue
            jj, ii = np.meshgrid(js, is_)
            dx, dy = gx - jj, gy - ii
            d = np.hypot(dx, dy).astype(np.float32)
            win = d < best[t, ii, jj]
            ii, jj, dx, dy, d = ii[win], jj[win], dx[win], dy[win], d[win]
            best[t, ii, jj] = d
            conf[t, ii, jj] = 1.0
            vec[2 * t, ii, jj] = dx
            vec[2 * t + 1, ii, jj] = dy
            size[t, ii, jj] = max(float(s), _MIN_SIGMA)
            owner[t, ii, jj] = m
    return FieldTargets(conf, labelled.astype(bool), vec, size, conf > 0), owner


def _inner_ellipses(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32: i + 1 inside the central ellipse of box i when no other box covers the pixel, 0 outside
    every ellipse, -2 where ellipses or boxes compete."""
    h, w = shape
    out = np.zeros((h, w), np.int32)
    cover = np.zeros((h, w), np.int16)
    for x1, y1, x2, y2 in boxes:
        cover[max(int(y1), 0):max(int(np.ceil(y2)), 0), max(int(x1), 0):max(int(np.ceil(x2)), 0)] += 1
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2)))
        axes = (max(int(round((x2 - x1) * 0.25)), 1), max(int(round((y2 - y1) * 0.4)), 1))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, c, axes, 0.0, 0.0, 360.0, 1, -1)
        m = m.astype(bool)
        out[m & (cover == 1)] = i + 1
        out[m & (cover > 1)] = -2
    return out


def build_targets(sample: DetectionSample) -> dict[str, np.ndarray]:
    """All training targets of one sample at its own resolution (H, W multiples of 16).

    Returns numpy arrays: ``semantic`` (H, W) int64 (0 background, 1 player, 2 ball, :data:`IGNORE`),
    ``offsets`` (2, H, W) float32 pixels, ``offset_mask`` (H, W) bool; for ``ball``, ``player`` and
    ``parts``: ``<head>_confidence``, ``<head>_labelled``, ``<head>_vector``, ``<head>_size``,
    ``<head>_positive`` (see :class:`FieldTargets`); ``player_box_log_wh`` (2, h, w) log(size / 8) and
    ``player_class`` (h, w) int64 (:data:`IGNORE` off the centre cells).
    """
    H, W = sample.image.shape[:2]
    if H % INPUT_MULTIPLE or W % INPUT_MULTIPLE:
        raise ValueError(f"{sample.name}: image size {W}x{H} is not a multiple of {INPUT_MULTIPLE}")
    hw = (H // PIF_STRIDE, W // PIF_STRIDE)
    boxes = np.asarray(sample.boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    balls = np.asarray(sample.balls, np.float32).reshape(-1, 3)
    out: dict[str, np.ndarray] = {}

    ball, _ = _field([balls[:, :2]], [balls[:, 2] / PIF_STRIDE], 1, hw, np.ones(1))
    player, owner = _field([centres], [0.1 * bh / PIF_STRIDE], 1, hw, np.ones(1))
    k = len(COCO_KEYPOINTS)
    if sample.keypoints is not None:
        kp = np.asarray(sample.keypoints, np.float32).reshape(n, k, 3)
        scale = np.sqrt(np.maximum(bw * bh, 1.0)) / PIF_STRIDE
        pts = [np.where(kp[:, t, 2:3] > 0, kp[:, t, :2], np.nan) for t in range(k)]
        parts, _ = _field(pts, [COCO_SIGMAS[t] * scale for t in range(k)], k, hw, np.ones(k))
    else:
        parts, _ = _field([np.zeros((0, 2))] * k, [np.zeros(0)] * k, k, hw, np.zeros(k))
    for name, f in (("ball", ball), ("player", player), ("parts", parts)):
        out[f"{name}_confidence"] = f.confidence
        out[f"{name}_labelled"] = f.labelled
        out[f"{name}_vector"] = f.vector
        out[f"{name}_size"] = f.size
        out[f"{name}_positive"] = f.positive

    own = owner[0]
    box = np.zeros((2, *hw), np.float32)
    cls = np.full(hw, IGNORE, np.int64)
    on = own >= 0
    if n:
        box[0][on] = np.log(np.maximum(bw[own[on]], 1.0) / PIF_STRIDE)
        box[1][on] = np.log(np.maximum(bh[own[on]], 1.0) / PIF_STRIDE)
        cls[on] = np.asarray(sample.classes, np.int64)[own[on]]
    out["player_box_log_wh"] = box
    out["player_class"] = cls

    semantic = np.full((H, W), IGNORE, np.int64)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    if sample.instances is not None:
        inst = np.asarray(sample.instances)
        semantic[:] = 0
        semantic[inst > 0] = 1
        semantic[inst == -1] = 2
        person = np.clip(inst, 0, n) - 1  # -1 for non-person pixels
    else:
        semantic[:] = 0
        inner = _inner_ellipses(boxes, (H, W))
        for x1, y1, x2, y2 in boxes:
            semantic[max(int(y1), 0):max(int(np.ceil(y2)), 0), max(int(x1), 0):max(int(np.ceil(x2)), 0)] = IGNORE
        semantic[inner > 0] = 1
        person = np.where(inner > 0, inner - 1, -1)
    for x, y, r in balls:
        d = np.hypot(xx - x, yy - y)
        if sample.instances is None:
            semantic[(d < 1.5 * r + 1) & (semantic == 0)] = IGNORE
            semantic[d < max(0.7 * r, 1.0)] = 2
    mask = person >= 0
    offsets = np.zeros((2, H, W), np.float32)
    if n and mask.any():
        offsets[0][mask] = centres[person[mask], 0] - xx[mask]
        offsets[1][mask] = centres[person[mask], 1] - yy[mask]
    out["semantic"] = semantic
    out["offsets"] = offsets
    out["offset_mask"] = mask
    return out


def collate_targets(targets: list[dict[str, np.ndarray]], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Stack per-sample targets into batch tensors on ``device``."""
    return {k: torch.from_numpy(np.stack([t[k] for t in targets])).to(device) for k in targets[0]}


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1.0)


def _pif_losses(out: dict[str, torch.Tensor], tg: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    logits = out[f"{name}_confidence"].float()
    conf = tg[f"{name}_confidence"]
    labelled = tg[f"{name}_labelled"][:, :, None, None].expand_as(conf)
    bce = F.binary_cross_entropy_with_logits(logits, conf, reduction="none")
    pos = tg[f"{name}_positive"] & labelled
    n, k, h, w = logits.shape
    vec = out[f"{name}_vector"].float().reshape(n, k, 2, h, w)
    vec_t = tg[f"{name}_vector"].reshape(n, k, 2, h, w)
    log_b = out[f"{name}_log_scale"].float().clamp(min=-3.0, max=5.0)
    sq = ((vec - vec_t) ** 2).sum(dim=2)
    loc = sq / torch.exp(2 * log_b) + log_b  # Eq. 2
    sigma = torch.exp(out[f"{name}_log_size"].float().clamp(max=5.0))
    sig = (sigma - tg[f"{name}_size"]).abs()
    return {
        "confidence": _masked_mean(bce, labelled),
        "localization": _masked_mean(loc, pos),
        "size": _masked_mean(sig, pos),
    }


def deepsportlab_loss(
    out: dict[str, torch.Tensor], tg: dict[str, torch.Tensor], weights: dict[str, float] | None = None,
    class_weights: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 1 plus the box and class additions. ``out``: the network's outputs; ``tg``: batched targets
    (:func:`collate_targets`); ``weights`` overrides sub-loss weights; ``class_weights`` weighs the person
    classes in the class cross-entropy (a weighted mean). Returns the total loss and its weighted parts."""
    w = dict(LOSS_WEIGHTS) | EXTRA_LOSS_WEIGHTS | (weights or {})
    parts: dict[str, torch.Tensor] = {}
    parts["semantic"] = F.cross_entropy(out["semantic"].float(), tg["semantic"], ignore_index=IGNORE)
    if not torch.isfinite(parts["semantic"]):  # every pixel ignored
        parts["semantic"] = out["semantic"].sum() * 0.0
    l1 = (out["offsets"].float() - tg["offsets"]).abs().sum(dim=1)
    parts["offset"] = _masked_mean(l1, tg["offset_mask"])
    for comp in ("confidence", "localization", "size"):
        parts[comp] = out["semantic"].new_zeros(())
    for name in ("ball", "player", "parts"):
        for comp, v in _pif_losses(out, tg, name).items():
            parts[comp] = parts[comp] + v
    pos = tg["player_positive"][:, 0]
    box_l1 = (out["player_box_log_wh"].float() - tg["player_box_log_wh"]).abs().sum(dim=1)
    parts["box"] = _masked_mean(box_l1, pos)
    cls_logits = out["player_class_logits"].float()
    cw = None if class_weights is None else torch.as_tensor(class_weights, dtype=cls_logits.dtype, device=cls_logits.device)
    ce = F.cross_entropy(cls_logits, tg["player_class"], weight=cw, ignore_index=IGNORE, reduction="sum")
    labelled = tg["player_class"] != IGNORE
    norm = labelled.sum() if cw is None else cw[tg["player_class"][labelled]].sum()
    parts["class"] = ce / norm.clamp(min=1)
    total = cast(torch.Tensor, sum(w[k] * v for k, v in parts.items()))
    return total, {k: float(w[k] * v.detach()) for k, v in parts.items()}

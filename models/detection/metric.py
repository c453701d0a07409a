"""Detection, segmentation and pose quality metrics (numpy only).

- Boxes (``players`` table: ``x1, y1, x2, y2`` in OpenCV pixels): AP at an IoU threshold (VOC/COCO style),
  AP per class and the class accuracy of matched boxes.
- Ball (``ball`` table: ``x, y`` pixels and ``score``): the bDQ of DeepSportLab (appendix A, Eq. 5).
- Player masks (instance-id masks, 0 = background): pSQ and pDQ (appendix A, Eqs. 6-8), the SQ and DQ (RQ)
  components of panoptic quality for the single player class.
- Poses (``poses`` table: 17 keypoints in COCO order, x, y pixels and score): COCO OKS, and AP / AR averaged
  over the OKS thresholds 0.50:0.05:0.95.

Every metric takes a list with one entry per image and pools its counts over the whole set (the paper's
Remark 2), never averaging per-image scores. Greedy matching visits predictions by descending score (stable:
equal scores keep their input order, images in list order), and each ground truth is matched at most once.
Scores are in 0..1; a metric that is undefined for the input (no ground truth at all) is NaN.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "COCO_SIGMAS",
    "OKS_THRESHOLDS",
    "box_iou",
    "box_ap50",
    "box_ap_per_class",
    "class_accuracy",
    "ball_bdq",
    "mask_iou",
    "panoptic_sq_dq",
    "keypoints_box_area",
    "oks",
    "keypoint_ap_ar",
]

COCO_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
"""Per-keypoint OKS constants sigma of COCO (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles);
the falloff constant of the OKS formula is kappa = 2 sigma."""

OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""The COCO OKS thresholds 0.50, 0.55, ..., 0.95."""

_EPS = np.spacing(1.0)  # added to the object area, as pycocotools does


# ----------------------------------------------------------------------------------------------------- helpers


def _boxes(boxes: ArrayLike) -> np.ndarray:
    return np.asarray(boxes, dtype=float).reshape(-1, 4)


def _vector(values: ArrayLike, n: int, name: str) -> np.ndarray:
    out = np.asarray(values).reshape(-1)
    if len(out) != n:
        raise ValueError(f"{name}: {len(out)} values for {n} objects")
    return out


def _same_length(**lists: Sequence) -> int:
    lengths = {name: len(v) for name, v in lists.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"per-image lists differ in length: {lengths}")
    return next(iter(lengths.values()))


def _greedy_match(sim: np.ndarray, scores: np.ndarray, threshold: float, strict: bool = False) -> np.ndarray:
    """Greedy one-to-one matching of predictions (rows of ``sim``) to ground truths (columns).

    Predictions are visited by descending score; each takes the still unmatched ground truth of highest
    similarity if that similarity is >= ``threshold`` (> with ``strict``). Returns, per prediction, the index of
    its ground truth or -1.
    """
    n, m = sim.shape
    match = np.full(n, -1, dtype=np.intp)
    if n == 0 or m == 0:
        return match
    taken = np.zeros(m, dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        cand = np.where(taken, -np.inf, sim[i])
        j = int(np.argmax(cand))
        if cand[j] > threshold or (not strict and cand[j] == threshold):
            match[i] = j
            taken[j] = True
    return match


def _average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    """All-point interpolated AP: area under the precision-recall curve of the predictions ranked by score,
    precision replaced by its maximum at any higher recall (VOC 2010+). 0 without predictions, NaN without
    ground truth."""
    if n_gt == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    hits = np.asarray(tp, dtype=bool)[np.argsort(-np.asarray(scores, dtype=float), kind="stable")]
    ctp = np.cumsum(hits)
    precision = ctp / np.arange(1, len(hits) + 1)
    recall = ctp / n_gt
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * envelope))


# --------------------------------------------------------------------------------------------------------- boxes


def box_iou(boxes_a: ArrayLike, boxes_b: ArrayLike) -> np.ndarray:
    """IoU matrix (N, M) of boxes (N, 4) and (M, 4), each ``x1, y1, x2, y2`` in pixels (areas without the +1 of
    old VOC code); boxes of zero area have IoU 0 with everything."""
    a, b = _boxes(boxes_a), _boxes(boxes_b)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _match_boxes(
    pred_boxes: Sequence[ArrayLike],
    pred_scores: Sequence[ArrayLike],
    gt_boxes: Sequence[ArrayLike],
    iou_threshold: float,
) -> list[np.ndarray]:
    _same_length(pred_boxes=pred_boxes, pred_scores=pred_scores, gt_boxes=gt_boxes)
    matches = []
    for pb, ps, gb in zip(pred_boxes, pred_scores, gt_boxes):
        pb = _boxes(pb)
        ps = _vector(ps, len(pb), "pred_scores").astype(float)
        matches.append(_greedy_match(box_iou(pb, gb), ps, iou_threshold))
    return matches


def box_ap50(
    pred_boxes: Sequence[ArrayLike],
    pred_scores: Sequence[ArrayLike],
    gt_boxes: Sequence[ArrayLike],
    iou_threshold: float = 0.5,
) -> float:
    """Average precision of box detections over a set of images (class-agnostic).

    Per image: ``pred_boxes`` (N, 4) and ``gt_boxes`` (M, 4) as ``x1, y1, x2, y2`` pixels, ``pred_scores`` (N,).
    A prediction is a true positive when it is matched (greedy by descending score, each ground truth once) to
    a ground truth with IoU >= ``iou_threshold``; a second prediction on a matched ground truth is a false
    positive. AP is the all-point interpolated area under the pooled precision-recall curve: 0 without
    predictions, NaN without ground truth.
    """
    matches = _match_boxes(pred_boxes, pred_scores, gt_boxes, iou_threshold)
    scores = np.concatenate([np.asarray(s, dtype=float).reshape(-1) for s in pred_scores] or [np.zeros(0)])
    tp = np.concatenate([m >= 0 for m in matches] or [np.zeros(0, dtype=bool)])
    return _average_precision(scores, tp, sum(len(_boxes(g)) for g in gt_boxes))


def box_ap_per_class(
    pred_boxes: Sequence[ArrayLike],
    pred_scores: Sequence[ArrayLike],
    pred_classes: Sequence[ArrayLike],
    gt_boxes: Sequence[ArrayLike],
    gt_classes: Sequence[ArrayLike],
    iou_threshold: float = 0.5,
) -> dict[Hashable, float]:
    """AP (as :func:`box_ap50`) of each class, predictions matched only to ground truths of their class.

    Classes are labels of any type (ints, or the ``cls`` strings of the ``players`` table), one per box. The dict
    holds the classes present in the ground truth, sorted; as in COCO, predictions of a class without ground
    truth are not scored. Their mean is the mAP.
    """
    n = _same_length(
        pred_boxes=pred_boxes, pred_scores=pred_scores, pred_classes=pred_classes,
        gt_boxes=gt_boxes, gt_classes=gt_classes,
    )
    pb = [_boxes(b) for b in pred_boxes]
    ps = [_vector(s, len(b), "pred_scores").astype(float) for s, b in zip(pred_scores, pb)]
    pc = [_vector(c, len(b), "pred_classes") for c, b in zip(pred_classes, pb)]
    gb = [_boxes(b) for b in gt_boxes]
    gc = [_vector(c, len(b), "gt_classes") for c, b in zip(gt_classes, gb)]
    labels: np.ndarray | list[Hashable] = np.unique(np.concatenate(gc)) if n and sum(map(len, gc)) else []
    out: dict[Hashable, float] = {}
    for c in labels:
        out[c.item() if isinstance(c, np.generic) else c] = box_ap50(
            [b[k == c] for b, k in zip(pb, pc)],
            [s[k == c] for s, k in zip(ps, pc)],
            [b[k == c] for b, k in zip(gb, gc)],
            iou_threshold,
        )
    return out


def class_accuracy(
    pred_boxes: Sequence[ArrayLike],
    pred_scores: Sequence[ArrayLike],
    pred_classes: Sequence[ArrayLike],
    gt_boxes: Sequence[ArrayLike],
    gt_classes: Sequence[ArrayLike],
    iou_threshold: float = 0.5,
) -> float:
    """Share of matched predictions whose class equals the class of their ground truth.

    Matching is class-agnostic, as in :func:`box_ap50`; unmatched predictions and ground truths do not count.
    NaN when nothing is matched.
    """
    _same_length(pred_classes=pred_classes, gt_classes=gt_classes, pred_boxes=pred_boxes)
    matches = _match_boxes(pred_boxes, pred_scores, gt_boxes, iou_threshold)
    n_matched = n_right = 0
    for m, pb, pc, gb, gc in zip(matches, pred_boxes, pred_classes, gt_boxes, gt_classes):
        pc = _vector(pc, len(_boxes(pb)), "pred_classes")
        gc = _vector(gc, len(_boxes(gb)), "gt_classes")
        hit = m >= 0
        n_matched += int(hit.sum())
        n_right += int(np.sum(pc[hit] == gc[m[hit]]))
    return n_right / n_matched if n_matched else float("nan")


# ---------------------------------------------------------------------------------------------------------- ball


def _u_statistic(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney U: pairs (positive, negative) with the positive scored higher, ties counted 1/2."""
    if len(pos) == 0 or len(neg) == 0:
        return 0.0
    neg = np.sort(neg)
    below = np.searchsorted(neg, pos, side="left")
    not_above = np.searchsorted(neg, pos, side="right")
    return float(np.sum(below) + 0.5 * np.sum(not_above - below))


def ball_bdq(
    pred_xy: ArrayLike,
    pred_scores: ArrayLike,
    gt_xy: ArrayLike,
    radius: ArrayLike,
    negatives: Literal["all_images", "ball_absent"] = "all_images",
) -> float:
    """Ball detection quality bDQ: area under the ROC curve of the per-image ball detection (DeepSportLab,
    appendix A, Eq. 5, after BallSeg), in 0..1.

    One entry per image: ``pred_xy`` (n, 2) pixels and ``pred_scores`` (n,) of the image's predicted ball (the
    highest-scoring one when the detector gives several; NaN where there is none), ``gt_xy`` (n, 2) pixels of
    the annotated ball (NaN row: no ball annotated), ``radius`` pixels (scalar or (n,)): the radius of the
    ball's ground-truth mask, i.e. half its diameter.

    At a threshold tau, a prediction with score >= tau is a true positive when it lies inside the ground-truth
    ball mask, taken as the disk of ``radius`` around the annotated centre (distance <= radius), and a false
    positive otherwise (off the ball, or no ball annotated). As in the paper, TPr(tau) = |TP| / |images with an
    annotated ball| and FPr(tau) = |FP| / |all images|, so an image whose ball is found can never be a false
    positive yet counts in the FP rate; ``negatives="ball_absent"`` instead uses the usual ROC: FPr over the
    images without a ball, and a prediction off the ball in a ball image only misses it.

    Left open by the paper and chosen here: the curve joins its points by straight lines (tied scores give a
    diagonal step) and, past the lowest score, runs flat to FPr = 1: lowering the threshold never recovers a
    missed ball. The area is computed exactly as a rank statistic: the share of (positive image, negative image)
    pairs in which the ball is found at a score above the negative's false positive (ties 1/2; a negative with
    no false positive counts as below every found ball; a missed ball scores 0). NaN when no image has a ball
    (or, with ``"ball_absent"``, when every image has one).
    """
    scores = np.asarray(pred_scores, dtype=float).reshape(-1)
    n = len(scores)
    pred = np.asarray(pred_xy, dtype=float).reshape(n, 2)
    gt = np.asarray(gt_xy, dtype=float).reshape(n, 2)
    r = np.broadcast_to(np.asarray(radius, dtype=float), (n,))
    has_pred = np.isfinite(scores) & np.isfinite(pred).all(axis=1)
    has_ball = np.isfinite(gt).all(axis=1)
    dist = np.full(n, np.inf)
    both = has_pred & has_ball
    dist[both] = np.linalg.norm(pred[both] - gt[both], axis=1)
    hit = both & (dist <= r)
    if negatives == "all_images":
        false_pos, n_neg = has_pred & ~hit, n
    elif negatives == "ball_absent":
        false_pos, n_neg = has_pred & ~has_ball, int(np.sum(~has_ball))
    else:
        raise ValueError(f"negatives must be 'all_images' or 'ball_absent', not {negatives!r}")
    n_pos = int(np.sum(has_ball))
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    pos, neg = scores[hit], scores[false_pos]
    wins = _u_statistic(pos, neg) + len(pos) * (n_neg - len(neg))
    return wins / (n_pos * n_neg)


# --------------------------------------------------------------------------------------------------------- masks


def mask_iou(pred_mask: ArrayLike, gt_mask: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (ground-truth, predicted) instance of two instance-id masks of the same shape (0 =
    background). Returns ``(iou (M, N), gt_ids (M,), pred_ids (N,))``."""
    p, g = np.asarray(pred_mask), np.asarray(gt_mask)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: predicted {p.shape}, ground truth {g.shape}")
    g_ids, g_inv = np.unique(g.ravel(), return_inverse=True)
    p_ids, p_inv = np.unique(p.ravel(), return_inverse=True)
    joint = np.bincount(g_inv.ravel() * len(p_ids) + p_inv.ravel(), minlength=len(g_ids) * len(p_ids))
    joint = joint.reshape(len(g_ids), len(p_ids))
    keep_g, keep_p = g_ids != 0, p_ids != 0
    inter = joint[keep_g][:, keep_p].astype(float)
    union = joint.sum(axis=1)[keep_g][:, None] + joint.sum(axis=0)[keep_p][None, :] - inter
    return inter / np.maximum(union, 1.0), g_ids[keep_g], p_ids[keep_p]


def panoptic_sq_dq(pred_masks: Sequence[ArrayLike], gt_masks: Sequence[ArrayLike]) -> tuple[float, float]:
    """Player segmentation and detection quality (pSQ, pDQ) over a set of images (DeepSportLab, Eqs. 6-8).

    Per image, instance-id masks (H, W) of the same shape, 0 = background. A predicted and a ground-truth
    instance match when their mask IoU > 0.5 (which makes the matching unique, as in panoptic quality).
    pSQ = mean IoU of the matches; pDQ = TP / (TP + FP/2 + FN/2) = 2 TP / (N_pred + N_gt), with TP, FP, FN pooled
    over the images. pSQ is 0 without a match; both are NaN when no image holds any instance.
    """
    _same_length(pred_masks=pred_masks, gt_masks=gt_masks)
    tp = n_pred = n_gt = 0
    iou_sum = 0.0
    for p, g in zip(pred_masks, gt_masks):
        iou, g_ids, p_ids = mask_iou(p, g)
        matched = iou > 0.5
        tp += int(matched.sum())
        iou_sum += float(iou[matched].sum())
        n_pred += len(p_ids)
        n_gt += len(g_ids)
    if n_pred + n_gt == 0:
        return float("nan"), float("nan")
    return (iou_sum / tp if tp else 0.0), 2.0 * tp / (n_pred + n_gt)


# ---------------------------------------------------------------------------------------------------------- pose


def _keypoints(kpts: ArrayLike, n_kpts: int) -> np.ndarray:
    k = np.asarray(kpts, dtype=float)
    if k.ndim == 2:
        k = k[None]
    return k.reshape(-1, n_kpts, 3)


def keypoints_box_area(gt_kpts: ArrayLike) -> np.ndarray:
    """Area (pixels^2) of the box tightly containing the visible keypoints of each skeleton (M, K, 3): the s^2
    of the paper's OKS (Eq. 9); 0 for a skeleton with fewer than two distinct visible keypoints."""
    k = np.asarray(gt_kpts, dtype=float)
    k = k[None] if k.ndim == 2 else k
    vis = k[..., 2] > 0
    x = np.where(vis, k[..., 0], np.nan)
    y = np.where(vis, k[..., 1], np.nan)
    out = np.zeros(len(k))
    some = vis.any(axis=1)
    out[some] = (np.nanmax(x[some], 1) - np.nanmin(x[some], 1)) * (np.nanmax(y[some], 1) - np.nanmin(y[some], 1))
    return out


def oks(pred_kpts: ArrayLike, gt_kpts: ArrayLike, area: ArrayLike, sigmas: ArrayLike = COCO_SIGMAS) -> np.ndarray:
    """Object keypoint similarity (COCO) of every (prediction, ground truth) pair, in 0..1, shape (N, M).

    ``pred_kpts`` (N, K, 3) ``x, y, score`` and ``gt_kpts`` (M, K, 3) ``x, y, visibility`` in pixels (a single
    skeleton (K, 3) counts as N or M = 1); ``area`` (M,) or scalar: object area s^2 in pixels^2. With kappa_k =
    2 sigma_k, OKS = mean over the labelled (visibility > 0) keypoints k of exp(-d_k^2 / (2 s^2 kappa_k^2)),
    d_k the pixel distance. Prediction scores do not enter; a non-finite predicted point contributes 0. A ground
    truth with no labelled keypoint has OKS 0.
    """
    sig = np.asarray(sigmas, dtype=float).reshape(-1)
    pred, gt = _keypoints(pred_kpts, len(sig)), _keypoints(gt_kpts, len(sig))
    s2 = np.broadcast_to(np.asarray(area, dtype=float).reshape(-1), (len(gt),))
    d2 = np.sum((pred[:, None, :, :2] - gt[None, :, :, :2]) ** 2, axis=-1)
    e = d2 / (2.0 * (2.0 * sig) ** 2 * (s2[None, :, None] + _EPS))
    sim = np.where(np.isfinite(e), np.exp(-np.where(np.isfinite(e), e, 0.0)), 0.0)
    vis = gt[None, :, :, 2] > 0
    count = np.broadcast_to(vis.sum(axis=-1), sim.shape[:2])
    return np.divide((sim * vis).sum(axis=-1), count, out=np.zeros(count.shape), where=count > 0)


def keypoint_ap_ar(
    pred_kpts: Sequence[ArrayLike],
    gt_kpts: Sequence[ArrayLike],
    gt_areas: Sequence[ArrayLike] | None = None,
    pred_scores: Sequence[ArrayLike] | None = None,
    sigmas: ArrayLike = COCO_SIGMAS,
    thresholds: ArrayLike = OKS_THRESHOLDS,
    definition: Literal["coco", "paper"] = "coco",
) -> tuple[float, float]:
    """Pose AP and AR over a set of images, averaged over OKS thresholds (default 0.50:0.05:0.95).

    Per image: ``pred_kpts`` (N, 17, 3) ``x, y, score`` and ``gt_kpts`` (M, 17, 3) ``x, y, visibility`` in
    pixels; ``gt_areas`` (M,) pixels^2 (default: the box of the visible keypoints, the paper's s^2; COCO uses the
    segment area); ``pred_scores`` (N,) (default: the mean keypoint score, the paper's Eq. 10). Ground truths
    without any labelled keypoint are left out (COCO ignores them). Every prediction is kept (COCO keeps 20 per
    image, fewer than the people of a soccer frame).

    - ``"coco"``: at each threshold t, predictions are matched greedily by descending score to the unmatched
      ground truth of highest OKS >= t; AP(t) is the all-point interpolated area under the pooled
      precision-recall curve (pycocotools samples it at 101 recall points, which differs slightly), AR(t) the
      recall with every prediction.
    - ``"paper"`` (appendix A, Eqs. 11-12): the same matching with OKS > t; AP(t) = |TP| / N_pred (the precision
      of all predictions, no ranking), AR(t) = |TP| / N_gt. The paper matches once and then thresholds the
      OKS of each pair; matching at each threshold instead keeps a far, high-scoring prediction from taking
      the ground truth of a close one.

    Returns ``(AP, AR)``: (0, 0) without predictions, NaN without ground truth.
    """
    n_img = _same_length(pred_kpts=pred_kpts, gt_kpts=gt_kpts)
    if gt_areas is not None:
        _same_length(pred_kpts=pred_kpts, gt_areas=gt_areas)
    if pred_scores is not None:
        _same_length(pred_kpts=pred_kpts, pred_scores=pred_scores)
    if definition not in ("coco", "paper"):
        raise ValueError(f"definition must be 'coco' or 'paper', not {definition!r}")
    sig = np.asarray(sigmas, dtype=float).reshape(-1)
    taus = np.asarray(thresholds, dtype=float).reshape(-1)
    sims, scores = [], []
    for i in range(n_img):
        p, g = _keypoints(pred_kpts[i], len(sig)), _keypoints(gt_kpts[i], len(sig))
        a = keypoints_box_area(g) if gt_areas is None else np.broadcast_to(
            np.asarray(gt_areas[i], dtype=float).reshape(-1), (len(g),))
        labelled = (g[..., 2] > 0).any(axis=1)
        s = p[..., 2].mean(axis=1) if pred_scores is None else _vector(pred_scores[i], len(p), "pred_scores")
        sims.append(oks(p, g[labelled], a[labelled], sig))
        scores.append(np.asarray(s, dtype=float))
    n_gt = sum(s.shape[1] for s in sims)
    n_pred = sum(s.shape[0] for s in sims)
    if n_gt == 0:
        return float("nan"), float("nan")
    if n_pred == 0:
        return 0.0, 0.0
    all_scores = np.concatenate(scores)
    ap, ar = [], []
    tp: int | np.ndarray
    if definition == "paper":
        for t in taus:
            tp = sum(int(np.sum(_greedy_match(sim, s, t, strict=True) >= 0)) for sim, s in zip(sims, scores))
            ap.append(tp / n_pred)
            ar.append(tp / n_gt)
    else:
        for t in taus:
            tp = np.concatenate([_greedy_match(sim, s, t) >= 0 for sim, s in zip(sims, scores)])
            ap.append(_average_precision(all_scores, tp, n_gt))
            ar.append(tp.sum() / n_gt)
    return float(np.mean(ap)), float(np.mean(ar))

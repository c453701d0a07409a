"""Inference decoders of the DeepSportLab network (paper ``deepsportlab-ball-pose-mask``, Sec. 3.4).

Turns the tensors of :class:`matchflow.models.detection.network.DeepSportLabNet` into a ball position, player
boxes / classes / centres, player instance masks and 17-keypoint skeletons.

Coordinate frames and units
---------------------------
- *Input pixels*: (x, y) in the network's input image, x along columns, y along rows. Every coordinate
  returned by this module (boxes, centres, keypoints, ball) is in input pixels.
- *PIF grid* (stride ``s`` = 8): the keypoint predicted by cell (row i, column j) is at input pixel
  ``((j + dx) * s, (i + dy) * s)``; Sigma is ``exp(log_size)`` cells, i.e. ``Sigma * s`` input pixels.
- *Output grid* (stride ``o`` = ``out_stride``, e.g. 4 or 2): the fused maps and the instance map have
  shape ``(ceil(H / o), ceil(W / o))`` and grid pixel (row a, column b) stands for input pixel
  ``(b * o, a * o)`` (same convention as the PIF grid).

Pipeline (:func:`decode`)
-------------------------
1. :func:`fuse_confidence` (Eq. 3): Gaussian splatting of the low-resolution PIF confidences onto the
   output grid, for the ball, player-centre and 17 part fields.
2. :func:`decode_ball`: top-1 maximum of the fused ball map.
3. :func:`decode_players`: local maxima of the fused player map (max-pool NMS, then a greedy minimum
   distance), each with a box and a person class read from the cells that voted for it.
4. :func:`assign_masks` (Eq. 4): every "player" pixel goes to the centre nearest to ``p + offset(p)``.
5. :func:`decode_keypoints`: per player mask and part type, the maximum of the fused part map inside the
   mask, kept when its score is >= 0.1.

Scores
------
The fused value ``S~`` is a sum of Gaussian votes and is *not* bounded by 1 (many cells voting for the same
point add up), so it is only used to locate peaks. The score of a detected point (ball, player centre or
keypoint) is the *vote score*: the largest cell probability ``S(u)`` among the cells ``u`` (with
``S(u) >= fuse_threshold``, i.e. those that take part in Eq. 3) whose predicted keypoint
``u + vector(u)`` lies within ``score_radius`` input pixels of the point; 0 when there is none. It is in
[0, 1], comparable across images, suitable for thresholds and ROC / PR curves.

Speed (CPU, torch 2.14, one thread, one :func:`decode` call on a 960x544 batch of 4, shared 2-core machine):

- realistic sparsity (per image 20 players with 4x4 confident cells per centre and per visible part, ~13 of
  17 parts visible, a ball, all other cells at probability ~0.003): about 70-95 ms at ``out_stride`` 4
  (about 20 ms per image) and 140-150 ms at ``out_stride`` 2;
- dense worst case (randomly initialised network, every PIF cell at probability ~0.5, so every cell is
  splatted): about 1.8 s at ``out_stride`` 4 and 3.5 s at ``out_stride`` 2.

The cost grows with the number of cells above ``fuse_threshold`` (Eq. 3) and with the output resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from matchflow.models.detection.network import COCO_KEYPOINTS, PERSON_CLASSES, SEMANTIC_CLASSES

__all__ = [
    "DecodeParams",
    "Decoded",
    "Players",
    "fuse_confidence",
    "vote_scores",
    "decode_ball",
    "decode_players",
    "assign_masks",
    "decode_keypoints",
    "decode",
]

_LOG_SIZE_CLAMP = (-10.0, 10.0)  # exp() guard for untrained / extreme log-size predictions
_COORD_CLAMP = 1e6  # grid coordinates of far-away votes are clamped before rounding to integers


# --------------------------------------------------------------------------------------------------------
# Parameters and results
# --------------------------------------------------------------------------------------------------------


@dataclass
class DecodeParams:
    """Thresholds and sizes of the decoders. Distances are in input pixels unless stated otherwise.

    - ``pif_stride`` (8): stride of the PIF fields.
    - ``out_stride`` (4): stride of the fused maps and of the instance map.
    - ``fuse_threshold`` (0.05): cells with probability below it are not splatted (Eq. 3).
    - ``fuse_window`` (3.0): half-width of a splat, in Sigmas.
    - ``max_radius`` (32.0): cap on the half-width of a splat.
    - ``min_sigma`` (None = ``out_stride / 2``): lower bound on Sigma (input pixels) so that a vote
      landing between two output pixels is not lost by sampling.
    - ``score_radius`` (8.0): radius of the vote score (see the module docstring).
    - ``refine`` (True): sub-pixel peak position from the 3x3 weighted centroid of the fused map.
    - ``ball_threshold`` (0.3): minimum vote score of the ball.
    - ``player_threshold`` (0.3): minimum vote score of a player centre.
    - ``nms_radius`` (8.0): half-width of the max-pool window for player peaks (rounded to output pixels,
      at least 1).
    - ``min_distance`` (12.0): minimum distance between two player centres (greedy, by score).
    - ``top_k`` (50): at most this many players per image.
    - ``mask_max_distance_factor`` (0.75) and ``mask_max_distance_px`` (None): guard of
      :func:`assign_masks`; a player pixel whose ``p + offset`` is farther than
      ``factor * box height`` (and, when set, than the pixel bound) from its nearest centre stays 0.
    - ``keypoint_threshold`` (0.1, paper): minimum vote score of a body-part keypoint.
    - ``player_class`` (1): index of "player" in the semantic classes.
    """

    pif_stride: int = 8
    out_stride: int = 4
    fuse_threshold: float = 0.05
    fuse_window: float = 3.0
    max_radius: float = 32.0
    min_sigma: float | None = None
    score_radius: float = 8.0
    refine: bool = True
    ball_threshold: float = 0.3
    player_threshold: float = 0.3
    nms_radius: float = 8.0
    min_distance: float = 12.0
    top_k: int = 50
    mask_max_distance_factor: float | None = 0.75
    mask_max_distance_px: float | None = None
    keypoint_threshold: float = 0.1
    player_class: int = SEMANTIC_CLASSES.index("player")


@dataclass
class Players:
    """Player detections of one image (torch tensors, on the device of the inputs), sorted by score.

    ``centres`` (P, 2) x, y and ``boxes`` (P, 4) x1, y1, x2, y2 in input pixels; ``scores`` (P,) vote
    scores in [0, 1]; ``classes`` (P,) int64 indices into :data:`PERSON_CLASSES`; ``class_probs`` (P, 3).
    """

    centres: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    class_probs: torch.Tensor

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass
class Decoded:
    """Decoded detections of one image (numpy arrays). Coordinates in input pixels.

    - ``boxes`` (P, 4) float32 x1, y1, x2, y2; ``scores`` (P,) float32 in [0, 1], descending;
      ``classes`` (P,) int64 into :data:`PERSON_CLASSES`; ``class_probs`` (P, 3) float32;
      ``centres`` (P, 2) float32 x, y.
    - ``keypoints`` (P, 17, 3) float32 x, y, score in :data:`COCO_KEYPOINTS` order (NaN, NaN, 0 if absent).
    - ``masks`` (ceil(H / mask_stride), ceil(W / mask_stride)) int16: 0 background, i + 1 = player i;
      pixel (a, b) stands for input pixel (b * mask_stride, a * mask_stride).
    - ``ball`` (3,) float32 x, y, score, or None.
    - ``image_size`` (H, W) of the network input.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    class_probs: np.ndarray
    centres: np.ndarray
    keypoints: np.ndarray
    masks: np.ndarray
    mask_stride: int
    ball: np.ndarray | None
    image_size: tuple[int, int]


# --------------------------------------------------------------------------------------------------------
# Eq. 3: fusion
# --------------------------------------------------------------------------------------------------------


def fuse_confidence(
    confidence: torch.Tensor,
    vector: torch.Tensor,
    log_size: torch.Tensor,
    stride: int = 8,
    out_stride: int = 4,
    threshold: float = 0.05,
    max_radius: float = 32.0,
    *,
    window: float = 3.0,
    min_sigma: float | None = None,
    out_size: tuple[int, int] | None = None,
    chunk_elems: int = 1 << 22,
) -> torch.Tensor:
    """High-resolution confidence maps by Gaussian splatting of the PIF votes (Eq. 3).

    ``S~(k; p) = sum_u S(k; u) exp(-||p - (u + vector(k; u))||^2 / (2 Sigma(k; u)^2))``, evaluated on the
    output grid (stride ``out_stride`` input pixels; grid pixel (a, b) = input pixel (b * o, a * o)).

    Args:
        confidence: (N, K, h, w) probabilities S in [0, 1] (sigmoid of the network's logits).
        vector: (N, 2K, h, w); channel 2k = dx, 2k + 1 = dy of field k, in cells.
        log_size: (N, K, h, w) log(Sigma), Sigma in cells.
        stride: PIF stride in input pixels.
        out_stride: stride of the output grid in input pixels.
        threshold: cells with S < threshold are skipped.
        max_radius: cap on a splat's half-width, input pixels.
        window: a splat covers the square of half-width ``ceil(window * Sigma)`` output pixels (Sigma in
            output pixels), at most ``ceil(max_radius / out_stride)``.
        min_sigma: lower bound on Sigma in input pixels (default ``out_stride / 2``), so that a sharp vote
            between grid pixels still reaches its nearest pixel.
        out_size: (H_out, W_out); default ``ceil(h * stride / out_stride)``, ``ceil(w * stride / out_stride)``.
        chunk_elems: memory bound (number of splatted values) per vectorised step.

    Returns:
        (N, K, H_out, W_out) float32 fused maps. Values are sums of votes and are NOT bounded by 1.
    """
    n_img, k_fields, h, w = confidence.shape
    if vector.shape != (n_img, 2 * k_fields, h, w) or log_size.shape != confidence.shape:
        raise ValueError(
            f"shape mismatch: confidence {tuple(confidence.shape)}, vector {tuple(vector.shape)}, "
            f"log_size {tuple(log_size.shape)}"
        )
    if out_size is None:
        out_size = (math.ceil(h * stride / out_stride), math.ceil(w * stride / out_stride))
    ho, wo = out_size
    device = confidence.device
    out = torch.zeros(n_img * k_fields * ho * wo, dtype=torch.float32, device=device)
    conf = confidence.detach().float()
    n, k, i, j = (conf >= threshold).nonzero(as_tuple=True)
    if n.numel() == 0:
        return out.view(n_img, k_fields, ho, wo)
    vec = vector.detach().float()
    s_val = conf[n, k, i, j]
    scale = stride / out_stride
    cx = ((j.float() + vec[n, 2 * k, i, j]) * scale).clamp(-_COORD_CLAMP, _COORD_CLAMP)
    cy = ((i.float() + vec[n, 2 * k + 1, i, j]) * scale).clamp(-_COORD_CLAMP, _COORD_CLAMP)
    sigma = log_size.detach().float()[n, k, i, j].clamp(*_LOG_SIZE_CLAMP).exp() * scale
    sigma = sigma.clamp(min=(out_stride / 2 if min_sigma is None else min_sigma) / out_stride)
    r_max = max(1, math.ceil(max_radius / out_stride))
    radius = torch.ceil(window * sigma).clamp(1, r_max).long()
    # Drop votes whose whole splat falls outside the grid.
    inside = (cx > -radius - 1) & (cx < wo + radius) & (cy > -radius - 1) & (cy < ho + radius)
    base = (n * k_fields + k) * ho  # row offset of the (image, field) plane, in rows
    for r in torch.unique(radius[inside]).tolist():
        sel = (inside & (radius == r)).nonzero(as_tuple=True)[0]
        d = torch.arange(-r, r + 1, device=device)
        step = max(1, chunk_elems // (2 * r + 1) ** 2)
        for start in range(0, sel.numel(), step):
            idx = sel[start:start + step]
            px = torch.round(cx[idx])[:, None].long() + d  # (M, 2r+1)
            py = torch.round(cy[idx])[:, None].long() + d
            inv = 1.0 / (2.0 * sigma[idx] ** 2)[:, None]
            gx = torch.exp(-((px.float() - cx[idx, None]) ** 2) * inv) * ((px >= 0) & (px < wo))
            gy = torch.exp(-((py.float() - cy[idx, None]) ** 2) * inv) * ((py >= 0) & (py < ho))
            gy = gy * s_val[idx, None]
            vals = gy[:, :, None] * gx[:, None, :]  # (M, 2r+1, 2r+1), zero outside the grid
            flat = (base[idx, None] + py.clamp(0, ho - 1))[:, :, None] * wo + px.clamp(0, wo - 1)[:, None, :]
            out.index_add_(0, flat.reshape(-1), vals.reshape(-1))
    return out.view(n_img, k_fields, ho, wo)


# --------------------------------------------------------------------------------------------------------
# Helpers: peaks, votes
# --------------------------------------------------------------------------------------------------------


def _refine(
    fused: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, refine: bool, fields: torch.Tensor | None = None
) -> torch.Tensor:
    """(P, 2) x, y in grid pixels of peaks at (rows, cols) of a (H_out, W_out) map, or of the (K, H_out, W_out)
    maps ``fields``: 3x3 weighted centroid of the (non-negative) map when ``refine``, else the pixel itself."""
    if not refine or rows.numel() == 0:
        return torch.stack([cols.float(), rows.float()], dim=1)
    maps = fused if fields is not None else fused[None]
    ho, wo = maps.shape[-2:]
    kf = (fields if fields is not None else torch.zeros_like(rows))[:, None, None]
    d = torch.arange(-1, 2, device=fused.device)
    rr = rows[:, None, None] + d[None, :, None]  # (P, 3, 1)
    cc = cols[:, None, None] + d[None, None, :]  # (P, 1, 3)
    valid = (rr >= 0) & (rr < ho) & (cc >= 0) & (cc < wo)
    wgt = maps[kf, rr.clamp(0, ho - 1), cc.clamp(0, wo - 1)].clamp(min=0) * valid  # (P, 3, 3)
    tot = wgt.sum(dim=(1, 2))
    ok = tot > 0
    x = torch.where(ok, (wgt * cc.float()).sum(dim=(1, 2)) / tot.clamp(min=1e-12), cols.float())
    y = torch.where(ok, (wgt * rr.float()).sum(dim=(1, 2)) / tot.clamp(min=1e-12), rows.float())
    return torch.stack([x, y], dim=1)


def _is_class(logits: torch.Tensor, cls: int) -> torch.Tensor:
    """(H, W) bool: ``logits.argmax(0) == cls`` for (C, H, W) logits (first maximum wins, as in argmax)."""
    ref = logits[cls]
    out = torch.ones_like(ref, dtype=torch.bool)
    for c in range(logits.shape[0]):
        if c != cls:
            out &= (logits[c] < ref) if c < cls else (logits[c] <= ref)
    return out


def _votes(
    confidence: torch.Tensor, vector: torch.Tensor, stride: int, min_conf: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cells with S >= min_conf of (K, h, w) fields: (field index, S, target x, target y, flat cell index)."""
    k, i, j = (confidence >= min_conf).nonzero(as_tuple=True)
    s_val = confidence[k, i, j].float()
    tx = (j.float() + vector[2 * k, i, j].float()) * stride
    ty = (i.float() + vector[2 * k + 1, i, j].float()) * stride
    return k, s_val, tx, ty, i * confidence.shape[-1] + j


def vote_scores(
    points: torch.Tensor,
    confidence: torch.Tensor,
    vector: torch.Tensor,
    stride: int = 8,
    radius: float = 8.0,
    min_conf: float = 0.05,
) -> torch.Tensor:
    """Vote scores of points of one image, in [0, 1] (see the module docstring).

    Args:
        points: (P, K, 2) x, y in input pixels (point p of field k), or (P, 2) when K = 1.
        confidence: (K, h, w) probabilities; vector: (2K, h, w) in cells.
        stride: PIF stride; radius: input pixels; min_conf: cells below it are ignored.

    Returns:
        (P, K) (or (P,) for (P, 2) points): the largest S(k; u) among the cells of field k with
        S >= min_conf whose predicted keypoint is within ``radius`` of the point; 0 if none. NaN points score 0.
    """
    squeeze = points.dim() == 2
    pts = points[:, None, :] if squeeze else points
    n_pts, k_fields = pts.shape[:2]
    scores = torch.zeros(n_pts, k_fields, dtype=torch.float32, device=confidence.device)
    k, s_val, tx, ty, _ = _votes(confidence, vector, stride, min_conf)
    if n_pts and k.numel():
        target = pts[:, k, :].float()  # (P, M, 2)
        d2 = (target[..., 0] - tx) ** 2 + (target[..., 1] - ty) ** 2
        cand = torch.where(d2 <= radius**2, s_val.expand(n_pts, -1), torch.zeros_like(d2))
        scores.scatter_reduce_(1, k.expand(n_pts, -1), cand, reduce="amax")
    return scores[:, 0] if squeeze else scores


# --------------------------------------------------------------------------------------------------------
# Ball
# --------------------------------------------------------------------------------------------------------


def decode_ball(
    fused: torch.Tensor,
    confidence: torch.Tensor,
    vector: torch.Tensor,
    *,
    stride: int = 8,
    out_stride: int = 4,
    threshold: float = 0.3,
    score_radius: float = 8.0,
    min_conf: float = 0.05,
    refine: bool = True,
) -> tuple[float, float, float] | None:
    """Ball of one image: top-1 maximum of the fused ball map (paper, Sec. 3.4).

    Args:
        fused: (1, H_out, W_out) or (H_out, W_out) fused ball map (:func:`fuse_confidence`).
        confidence: (1, h, w) ball probabilities; vector: (2, h, w) ball vectors in cells.
        threshold: minimum score; min_conf: the fusion threshold (cells that voted).

    Returns:
        (x, y, score): position in input pixels (3x3 centroid around the maximum when ``refine``) and vote
        score in [0, 1] (largest probability of a cell voting within ``score_radius`` px of the peak);
        None when the fused map is empty or the score is below ``threshold``.
    """
    f = fused.reshape(fused.shape[-2:]).float()
    flat = int(torch.argmax(f))
    if float(f.view(-1)[flat]) <= 0:
        return None
    wo = f.shape[1]
    rows = torch.tensor([flat // wo], device=f.device)
    cols = torch.tensor([flat % wo], device=f.device)
    xy = _refine(f, rows, cols, refine) * out_stride  # (1, 2) input pixels
    score = float(vote_scores(xy, confidence, vector, stride, score_radius, min_conf)[0])
    if score < threshold:
        return None
    return float(xy[0, 0]), float(xy[0, 1]), score


# --------------------------------------------------------------------------------------------------------
# Players
# --------------------------------------------------------------------------------------------------------


def decode_players(
    fused: torch.Tensor,
    confidence: torch.Tensor,
    vector: torch.Tensor,
    box_log_wh: torch.Tensor,
    class_logits: torch.Tensor,
    *,
    stride: int = 8,
    out_stride: int = 4,
    threshold: float = 0.3,
    nms_radius: float = 8.0,
    min_distance: float = 12.0,
    top_k: int = 50,
    score_radius: float = 8.0,
    min_conf: float = 0.05,
    refine: bool = True,
) -> Players:
    """Player centres, boxes and classes of one image.

    Centres are the local maxima of the fused player map: max-pool NMS over a square window of half-width
    ``max(1, round(nms_radius / out_stride))`` output pixels, then the candidates with a vote score
    >= ``threshold`` are taken by decreasing score (ties: larger fused value) and a candidate closer than
    ``min_distance`` input pixels to an already kept centre is dropped; at most ``top_k`` are kept.

    Box and class of a centre come from the cells that voted for it (S >= ``min_conf``, predicted keypoint
    within ``score_radius`` px): S-weighted mean of ``box_log_wh`` (then exp, times ``stride``) and of the
    softmax class probabilities; from the PIF cell nearest the centre when no cell voted for it. The box
    (width, height) is centred on the centre; class = argmax of the averaged probabilities.

    Args:
        fused: (1, H_out, W_out) or (H_out, W_out) fused player-centre map.
        confidence: (1, h, w) probabilities; vector: (2, h, w) cells; box_log_wh: (2, h, w)
            log(width / stride), log(height / stride); class_logits: (3, h, w) over :data:`PERSON_CLASSES`.

    Returns:
        :class:`Players`, sorted by decreasing score.
    """
    f = fused.reshape(fused.shape[-2:]).float()
    dev = f.device
    ho, wo = f.shape
    half = max(1, round(nms_radius / out_stride))
    k = 2 * half + 1  # square max-pool as two 1-D passes
    pooled = F.max_pool2d(f[None, None], (1, k), stride=1, padding=(0, half))
    pooled = F.max_pool2d(pooled, (k, 1), stride=1, padding=(half, 0))[0, 0]
    peaks = ((f == pooled) & (f > 0)).view(-1)
    flat = peaks.nonzero(as_tuple=True)[0]
    vals = f.view(-1)[flat]
    max_cand = max(4 * top_k, 64)
    if flat.numel() > max_cand:
        vals, order = torch.topk(vals, max_cand)
        flat = flat[order]
    xy = _refine(f, flat // wo, flat % wo, refine) * out_stride
    scores = vote_scores(xy, confidence, vector, stride, score_radius, min_conf)
    keep = scores >= threshold
    xy, scores, vals = xy[keep], scores[keep], vals[keep]
    # Order by score, ties by fused value (two stable sorts).
    order = torch.sort(vals, descending=True, stable=True).indices
    order = order[torch.sort(scores[order], descending=True, stable=True).indices]
    xy, scores = xy[order], scores[order]
    # Greedy minimum distance, in score order (few candidates: done on the host).
    pts = xy.cpu().numpy()
    kept: list[int] = []
    for idx in range(len(pts)):
        if len(kept) >= top_k:
            break
        if kept and np.min(np.hypot(*(pts[kept] - pts[idx]).T)) < min_distance:
            continue
        kept.append(idx)
    sel = torch.as_tensor(kept, dtype=torch.long, device=dev)
    xy, scores = xy[sel], scores[sel]
    n_pts = xy.shape[0]

    # Box size and class from the voting cells.
    _, s_val, tx, ty, cell = _votes(confidence, vector, stride, min_conf)
    h, w = confidence.shape[-2:]
    logwh = box_log_wh.reshape(2, -1).float()  # (2, h*w)
    probs = torch.softmax(class_logits.float(), dim=0).reshape(class_logits.shape[0], -1)  # (C, h*w)
    if n_pts and s_val.numel():
        d2 = (xy[:, 0:1] - tx) ** 2 + (xy[:, 1:2] - ty) ** 2  # (P, M)
        wgt = torch.where(d2 <= score_radius**2, s_val.expand(n_pts, -1), torch.zeros_like(d2))
    else:
        wgt = torch.zeros(n_pts, s_val.numel(), device=dev)
    tot = wgt.sum(dim=1, keepdim=True)
    near_i = torch.round(xy[:, 1] / stride).long().clamp(0, h - 1)
    near_j = torch.round(xy[:, 0] / stride).long().clamp(0, w - 1)
    near = near_i * w + near_j
    has = tot[:, 0] > 0
    wn = wgt / tot.clamp(min=1e-12)
    lwh = torch.where(has[:, None], wn @ logwh[:, cell].T, logwh[:, near].T)  # (P, 2)
    cprob = torch.where(has[:, None], wn @ probs[:, cell].T, probs[:, near].T)  # (P, C)
    wh = lwh.clamp(*_LOG_SIZE_CLAMP).exp() * stride
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], dim=1)
    classes = cprob.argmax(dim=1) if n_pts else torch.zeros(0, dtype=torch.long, device=dev)
    return Players(centres=xy, boxes=boxes, scores=scores, classes=classes, class_probs=cprob)


# --------------------------------------------------------------------------------------------------------
# Eq. 4: masks
# --------------------------------------------------------------------------------------------------------


def assign_masks(
    semantic: torch.Tensor,
    offsets: torch.Tensor,
    centres: torch.Tensor,
    out_stride: int = 4,
    *,
    box_heights: torch.Tensor | None = None,
    max_distance_factor: float | None = 0.75,
    max_distance_px: float | None = None,
    player_class: int = 1,
    on_grid: bool = False,
) -> torch.Tensor:
    """Player instance map of one image (Eq. 4), on the output grid.

    Every grid pixel p (input pixel (b * o, a * o)) whose semantic argmax is ``player_class`` goes to the
    centre nearest to ``p + offset(p)``.

    Guard (an addition to the paper): the pixel stays 0 when ``p + offset(p)`` is farther from that nearest
    centre than its radius: ``max_distance_factor * box_heights[i]`` (when both are given), capped at
    ``max_distance_px`` (when given). With neither, every player pixel is assigned (the paper's rule).

    Args:
        semantic: (C, H, W) logits (or probabilities) at input resolution.
        offsets: (2, H, W) dx, dy in input pixels from each pixel to its player's centre.
        centres: (P, 2) x, y in input pixels.
        out_stride: stride of the returned map.
        box_heights: (P,) box heights in input pixels (for the guard).
        on_grid: ``semantic`` and ``offsets`` are already the values at the grid's pixels, (C, ceil(H / o),
            ceil(W / o)) (``DeepSportLabNet.forward(images, grid_stride=o)``).

    Returns:
        (ceil(H / o), ceil(W / o)) int16: 0 = background / unassigned, i + 1 = centre i.
    """
    o = out_stride
    step = 1 if on_grid else o
    sem = semantic[:, ::step, ::step].contiguous()
    off = offsets[:, ::step, ::step].float().contiguous()
    ho, wo = sem.shape[-2:]
    inst = torch.zeros(ho * wo, dtype=torch.int16, device=semantic.device)
    n_pts = centres.shape[0]
    if n_pts == 0:
        return inst.view(ho, wo)
    player = _is_class(sem, player_class).view(-1)
    idx = player.nonzero(as_tuple=True)[0]
    if idx.numel() == 0:
        return inst.view(ho, wo)
    rows, cols = idx // wo, idx % wo
    qx = cols.float() * o + off[0].view(-1)[idx]
    qy = rows.float() * o + off[1].view(-1)[idx]
    c = centres.float().to(semantic.device)
    d2 = (qx[:, None] - c[:, 0]) ** 2 + (qy[:, None] - c[:, 1]) ** 2  # (M, P)
    dmin, nearest = d2.min(dim=1)
    radius = torch.full((n_pts,), math.inf, device=semantic.device)
    if box_heights is not None and max_distance_factor is not None:
        radius = max_distance_factor * box_heights.float().to(semantic.device)
    if max_distance_px is not None:
        radius = radius.clamp(max=max_distance_px)
    ok = dmin <= radius[nearest] ** 2
    inst[idx[ok]] = (nearest[ok] + 1).to(torch.int16)
    return inst.view(ho, wo)


# --------------------------------------------------------------------------------------------------------
# Keypoints
# --------------------------------------------------------------------------------------------------------


def decode_keypoints(
    fused_parts: torch.Tensor,
    instance_map: torch.Tensor,
    n_players: int | None = None,
    *,
    confidence: torch.Tensor | None = None,
    vector: torch.Tensor | None = None,
    stride: int = 8,
    out_stride: int = 4,
    threshold: float = 0.1,
    score_radius: float = 8.0,
    min_conf: float = 0.05,
    refine: bool = True,
) -> torch.Tensor:
    """Skeletons of one image: per player mask and part type, the maximum of the fused part map inside the
    mask (paper, Sec. 3.4); so one keypoint per type and player, the one with the highest fused value.

    Args:
        fused_parts: (K, H_out, W_out) fused part maps (K = 17, :data:`COCO_KEYPOINTS` order).
        instance_map: (H_out, W_out) int, 0 background, i + 1 = player i (:func:`assign_masks`).
        n_players: P (default: the largest label in ``instance_map``).
        confidence: (K, h, w) part probabilities and ``vector`` (2K, h, w): when given, the score is the
            vote score in [0, 1]; otherwise it is the fused value at the maximum, clipped to 1 (a sum of
            votes: four cells at 0.08 voting for one point score 0.32).
        threshold: keypoints scoring below it are dropped (0.1 in the paper).

    Returns:
        (P, K, 3) float32 x, y (input pixels; 3x3 centroid when ``refine``), score; NaN, NaN, 0 if absent.
    """
    k_fields, ho, wo = fused_parts.shape
    dev = fused_parts.device
    inst = instance_map.to(dev).long().view(-1)
    if n_players is None:
        n_players = int(inst.max()) if inst.numel() else 0
    out = torch.full((n_players, k_fields, 3), math.nan, dtype=torch.float32, device=dev)
    out[..., 2] = 0
    if n_players == 0:
        return out
    m = ho * wo
    pix = ((inst > 0) & (inst <= n_players)).nonzero(as_tuple=True)[0]  # pixels of the P masks
    n_pix = pix.numel()
    label = (inst[pix] - 1).expand(k_fields, n_pix)
    vals = fused_parts.float().reshape(k_fields, m)[:, pix]  # (K, M')
    best = torch.full((k_fields, n_players), -math.inf, device=dev)
    best.scatter_reduce_(1, label, vals, reduce="amax")
    is_best = vals == best.gather(1, label)
    pos = torch.full((k_fields, n_players), n_pix, dtype=torch.long, device=dev)
    cand = torch.where(is_best, torch.arange(n_pix, device=dev).expand(k_fields, n_pix), n_pix)
    pos.scatter_reduce_(1, label, cand, reduce="amin")  # first pixel reaching the maximum
    pos, best = pos.T, best.T  # (P, K)
    found = (pos < n_pix) & (best > 0)
    kk = torch.arange(k_fields, device=dev).expand(n_players, k_fields)[found]
    pf = pix[pos[found]]
    xy = torch.zeros(n_players, k_fields, 2, device=dev)
    if pf.numel():
        flat_maps = fused_parts.float()
        xy[found] = _refine(flat_maps, pf // wo, pf % wo, refine, fields=kk) * out_stride
    if confidence is not None and vector is not None:
        scores = vote_scores(xy, confidence, vector, stride, score_radius, min_conf)
    else:
        scores = best.clamp(max=1.0)
    keep = found & (scores >= threshold)
    out[keep, 0:2] = xy[keep]
    out[keep, 2] = scores[keep]
    return out


# --------------------------------------------------------------------------------------------------------
# Whole decoder
# --------------------------------------------------------------------------------------------------------


def _numpy(t: torch.Tensor, dtype: type) -> np.ndarray:
    return t.detach().cpu().numpy().astype(dtype, copy=False)


@torch.no_grad()
def decode(
    outputs: dict[str, torch.Tensor], params: DecodeParams | None = None, image_size: tuple[int, int] | None = None
) -> list[Decoded]:
    """Decode a batch of :class:`~matchflow.models.detection.network.DeepSportLabNet` outputs.

    ``outputs`` is the dict returned by ``DeepSportLabNet.forward`` (confidences as logits). The input size
    (H, W) is read from ``semantic``, unless ``image_size`` gives it: then ``semantic`` and ``offsets`` may also
    be on the decoders' grid, (ceil(H / out_stride), ceil(W / out_stride)), as ``forward(images,
    grid_stride=out_stride)`` returns them. Returns one :class:`Decoded` per image (numpy arrays, input pixels).
    """
    p = params or DecodeParams()
    semantic, offsets = outputs["semantic"], outputs["offsets"]
    n_img = semantic.shape[0]
    height, width = image_size if image_size is not None else semantic.shape[-2:]
    o, s = p.out_stride, p.pif_stride
    out_size = (math.ceil(height / o), math.ceil(width / o))
    on_grid = tuple(semantic.shape[-2:]) != (height, width)
    if on_grid and tuple(semantic.shape[-2:]) != out_size:
        raise ValueError(f"semantic map of {tuple(semantic.shape[-2:])} fits neither the image {(height, width)} "
                         f"nor its stride-{o} grid {out_size}")
    n_parts = outputs["parts_confidence"].shape[1]
    if n_parts != len(COCO_KEYPOINTS):
        raise ValueError(f"expected {len(COCO_KEYPOINTS)} part fields, got {n_parts}")

    conf: dict[str, torch.Tensor] = {}
    fused: dict[str, torch.Tensor] = {}
    for name in ("ball", "player", "parts"):
        conf[name] = torch.sigmoid(outputs[f"{name}_confidence"].float())
        fused[name] = fuse_confidence(
            conf[name],
            outputs[f"{name}_vector"],
            outputs[f"{name}_log_size"],
            s,
            o,
            p.fuse_threshold,
            p.max_radius,
            window=p.fuse_window,
            min_sigma=p.min_sigma,
            out_size=out_size,
        )

    results: list[Decoded] = []
    for b in range(n_img):
        ball = decode_ball(
            fused["ball"][b], conf["ball"][b], outputs["ball_vector"][b], stride=s, out_stride=o,
            threshold=p.ball_threshold, score_radius=p.score_radius, min_conf=p.fuse_threshold, refine=p.refine,
        )
        players = decode_players(
            fused["player"][b], conf["player"][b], outputs["player_vector"][b],
            outputs["player_box_log_wh"][b], outputs["player_class_logits"][b],
            stride=s, out_stride=o, threshold=p.player_threshold, nms_radius=p.nms_radius,
            min_distance=p.min_distance, top_k=p.top_k, score_radius=p.score_radius,
            min_conf=p.fuse_threshold, refine=p.refine,
        )
        masks = assign_masks(
            semantic[b], offsets[b], players.centres, o,
            box_heights=players.boxes[:, 3] - players.boxes[:, 1],
            max_distance_factor=p.mask_max_distance_factor, max_distance_px=p.mask_max_distance_px,
            player_class=p.player_class, on_grid=on_grid,
        )
        keypoints = decode_keypoints(
            fused["parts"][b], masks, len(players), confidence=conf["parts"][b],
            vector=outputs["parts_vector"][b], stride=s, out_stride=o, threshold=p.keypoint_threshold,
            score_radius=p.score_radius, min_conf=p.fuse_threshold, refine=p.refine,
        )
        results.append(
            Decoded(
                boxes=_numpy(players.boxes, np.float32).reshape(-1, 4),
                scores=_numpy(players.scores, np.float32),
                classes=_numpy(players.classes, np.int64),
                class_probs=_numpy(players.class_probs, np.float32).reshape(-1, len(PERSON_CLASSES)),
                centres=_numpy(players.centres, np.float32).reshape(-1, 2),
                keypoints=_numpy(keypoints, np.float32).reshape(-1, n_parts, 3),
                masks=_numpy(masks, np.int16),
                mask_stride=o,
                ball=None if ball is None else np.asarray(ball, dtype=np.float32),
                image_size=(int(height), int(width)),
            )
        )
    return results

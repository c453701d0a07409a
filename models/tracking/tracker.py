"""Online multi-player tracking over the sampled frames of one half.

At 2 fps a player moves up to 4 m between samples, so boxes of consecutive samples often do not overlap.
Association therefore works on the pitch first, in the spirit of BoT-SORT and Deep-EIoU:

1. **Pitch**: detections with a pitch position (valid calibration) against tracks with a Kalman state
   (:class:`~matchflow.models.tracking.kalman.PitchKalman`) last seen on the pitch up to ``short_gap`` seconds
   ago (30 s with ReID embeddings, through cut-aways; 1 s with kit colours), gated by how
   far a player can run since (``max_speed``); cost = metres from the predicted position / 3 (at most 2) +
   ``appearance_weight`` x appearance distance.
2. **Image**: detections left over against tracks seen in the previous sampled frame *of the same shot*, by box
   overlap (IoU >= ``min_iou``) and appearance; never across a cut, so a camera cut cannot join two players whose
   boxes happen to overlap.
3. **Re-identification**: what is still left against tracks lost for up to ``max_lost`` seconds, by appearance
   and by reachable distance where both have a pitch position. This is how a player is found again after a
   cut-away or a spell out of view.

Appearance distances are measured against what separates people in this half: every frame provides pairs of
detections that are surely different people (two detections of one frame). Appearance is a cost everywhere, in
units of the median such distance, and a match is never made beyond ``max_appearance`` of it. Where motion cannot
vouch for a match (re-identification, after ``short_gap`` seconds unseen or a cut) a stricter gate applies: the
``reid_quantile`` of those distances, and the match must be unambiguous: ``reid_ratio`` times closer than the
next candidate (Lowe's ratio test) and by more than half the median change of a player's appearance between two
sightings that motion vouched for. Kit colours cannot tell teammates apart at all: with them (``reid`` False)
nothing is re-identified, and a track ends at a cut-away or after a second unseen.

Detections left unmatched start new tracks: every detection gets a track. Appearance is a unit-length vector
per detection (a ReID embedding, or a kit colour made into one: :func:`colour_features`); each track keeps an
exponential moving average of it. Assignments use scipy's Hungarian solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from matchflow.models.tracking.kalman import PitchKalman

__all__ = ["TrackerParams", "HalfDetections", "track_half", "people_distances", "colour_features", "box_iou"]

_BIG = 1e6


@dataclass(frozen=True)
class TrackerParams:
    """Association settings. Distances: metres; times: seconds; appearance distances: Euclidean between unit
    vectors (0 the same, 2 opposite)."""

    max_speed: float = 9.0  # m/s: the fastest a player covers ground between two sightings
    gate: float = 1.5  # metres added to the reachable distance (calibration and foot-point error)
    min_iou: float = 0.2  # image association in the same shot
    appearance_weight: float = 2.0  # weight of the appearance distance beside the motion cost
    max_appearance: float = 0.75  # never match beyond this appearance distance, in units of the median distance
    # between two people of one frame
    short_gap: float = 30.0  # seconds unseen after which a track can only be re-identified (with ReID
    # embeddings; with colours, 1 s: teammates who look alike must not be joined across a longer gap)
    reid_quantile: float = 0.01  # the re-identification gate: this quantile of the distances between
    # different people (pairs of detections in one frame) of the half
    reid: bool = True  # re-identify lost tracks by appearance (False for kit colours, which teammates share)
    reid_ratio: float = 0.7  # re-identify only when the best candidate is this much closer than the second
    max_lost: float = 30.0  # seconds a lost track can still be re-identified
    ema: float = 0.8  # weight of the track's appearance memory against a new detection's


@dataclass(frozen=True)
class HalfDetections:
    """The detections of one half, one row each, in any order.

    ``frame`` (N,) sampled-frame index; ``t`` (N,) seconds; ``boxes`` (N, 4) x1, y1, x2, y2 pixels; ``pitch``
    (N, 2) metres, NaN where the frame has no valid calibration; ``appearance`` (N, D) unit vectors.
    ``shot`` (N,) the camera shot of the row's frame: a new number after each cut (rows of one frame share it).
    """

    frame: np.ndarray
    t: np.ndarray
    boxes: np.ndarray
    pitch: np.ndarray
    appearance: np.ndarray
    shot: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.frame)
        for name in ("t", "boxes", "pitch", "appearance", "shot"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"HalfDetections.{name} has {len(getattr(self, name))} rows, frame has {n}")


@dataclass
class _Track:
    id: int
    appearance: np.ndarray
    box: np.ndarray
    t: float
    frame: int
    shot: int
    kalman: PitchKalman | None = None
    on_pitch: bool = False  # the last detection had a pitch position
    seen: int = 1


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (len(a), len(b)) of boxes x1, y1, x2, y2."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def colour_features(rgb: np.ndarray) -> np.ndarray:
    """Unit-length appearance vectors (N, 4) from mean kit colours ``rgb`` (N, 3) 0..255: CIE Lab with the
    lightness halved (shade and light change it most) and the chroma damped in dark colours (where a few levels
    of noise swing the hue), plus a constant so that black is not the zero vector."""
    import cv2

    lab = cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(-1, 3)
    lab = lab.astype(np.float64)
    damp = lab[:, 0] / (lab[:, 0] + 40.0)
    v = np.stack([0.5 * lab[:, 0] / 255.0, damp * (lab[:, 1] - 128) / 64.0, damp * (lab[:, 2] - 128) / 64.0,
                  np.full(len(lab), 0.5)], axis=1)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Row-column pairs of least total cost among the finite (gated) entries."""
    if cost.size == 0:
        return []
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, _BIG))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if np.isfinite(cost[r, c])]


def _unambiguous(dist: np.ndarray, ratio: float, margin: float) -> np.ndarray:
    """``dist`` with every entry set to inf that is not clearly its row's and its column's best: a finite entry
    survives when it is below ``ratio`` times the second smallest of its row and of its column (Lowe's test) and
    at least ``margin`` below them."""
    out = dist.copy()
    for axis in (0, 1):
        if dist.shape[axis] < 2:
            continue
        second = np.take(np.sort(dist, axis=axis), 1, axis=axis)
        second = second[None, :] if axis == 0 else second[:, None]
        out[(dist > ratio * second) | (dist > second - margin)] = np.inf
    return out


def _appearance_distance(a: np.ndarray, tracks: list[_Track]) -> np.ndarray:
    if not tracks:
        return np.zeros((len(a), 0))
    b = np.stack([tr.appearance for tr in tracks])
    return np.sqrt(np.maximum(2.0 - 2.0 * (a @ b.T), 0.0))


def people_distances(det: HalfDetections, quantiles: tuple[float, ...], max_frames: int = 400) -> np.ndarray:
    """``quantiles`` of the appearance distances between pairs of detections of the same frame (different
    people), over up to ``max_frames`` frames of the half spread evenly; NaN when no frame has two detections."""
    frames = np.unique(det.frame)
    frames = frames[np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).astype(int)] if len(frames) else frames
    dists = []
    for f in frames:
        a = det.appearance[det.frame == f].astype(np.float64)
        if len(a) > 1:
            d = np.sqrt(np.maximum(2.0 - 2.0 * (a @ a.T), 0.0))
            dists.append(d[np.triu_indices(len(a), 1)])
    return np.quantile(np.concatenate(dists), quantiles) if dists else np.full(len(quantiles), np.nan)


def track_half(det: HalfDetections, params: TrackerParams | None = None) -> np.ndarray:
    """Track ids (N,) int32 for the rows of ``det``, 0, 1, 2, ... in order of first appearance, online over the
    sampled frames in order (each frame's answer depends only on earlier frames)."""
    p = params or TrackerParams()
    ids = np.full(len(det.frame), -1, np.int32)
    short_gap = p.short_gap if p.reid else min(p.short_gap, 1.0)
    reid_gate, typical = people_distances(det, (p.reid_quantile, 0.5))
    if not np.isfinite(typical) or typical <= 0:  # one person per frame at most: appearance cannot be calibrated
        reid_gate, typical = 0.0, 1.0
    reid_gate = float(reid_gate) / float(typical)  # all appearance distances below are in units of ``typical``
    tracks: list[_Track] = []
    previous_frame: int | None = None
    next_id = 0
    same: list[float] = []  # appearance distances of matches that motion vouched for (same player)
    for f in np.unique(det.frame):
        rows = np.flatnonzero(det.frame == f)
        t = float(det.t[rows[0]])
        shot = int(det.shot[rows[0]])
        tracks = [tr for tr in tracks if t - tr.t <= p.max_lost]
        app = det.appearance[rows].astype(np.float64)
        boxes = det.boxes[rows].astype(np.float64)
        pitch = det.pitch[rows].astype(np.float64)
        has_pitch = np.all(np.isfinite(pitch), axis=1)
        free_d = set(range(len(rows)))
        free_t = set(range(len(tracks)))
        app_dist = _appearance_distance(app, tracks) / typical
        matches: list[tuple[int, int]] = []

        # 1. on the pitch: reachable distance and appearance
        d_idx = [i for i in sorted(free_d) if has_pitch[i]]
        # (tracks whose last sighting was on the pitch, short moments ago)
        t_idx = [j for j in sorted(free_t) if tracks[j].on_pitch and t - tracks[j].t <= short_gap]
        cost = np.full((len(d_idx), len(t_idx)), np.inf)
        for b, j in enumerate(t_idx):
            tr = tracks[j]
            kf = tr.kalman
            assert kf is not None
            mean, _ = kf.predict(t)
            dt = t - tr.t
            reach = p.gate + p.max_speed * dt
            for a, i in enumerate(d_idx):
                dist = float(np.hypot(*(pitch[i] - kf.position)))
                if dist > reach or app_dist[i, j] > p.max_appearance:
                    continue
                off = float(np.hypot(*(pitch[i] - mean)))  # metres from the predicted position
                cost[a, b] = min(off, 6.0) / 3.0 + p.appearance_weight * app_dist[i, j]
        for a, b in _assign(cost):
            matches.append((d_idx[a], t_idx[b]))
            same.append(float(app_dist[d_idx[a], t_idx[b]]))
        free_d -= {i for i, _ in matches}
        free_t -= {j for _, j in matches}

        # 2. in the image, within the shot, from the previous sampled frame
        # (a detection and a track that both have a pitch position were judged on the pitch already)
        d_idx = sorted(free_d)
        t_idx = [j for j in sorted(free_t) if tracks[j].frame == previous_frame and tracks[j].shot == shot]
        if d_idx and t_idx:
            both = has_pitch[d_idx][:, None] & np.array([tracks[j].on_pitch for j in t_idx])[None, :]
            iou = box_iou(boxes[d_idx], np.stack([tracks[j].box for j in t_idx]))
            cost = np.where((iou >= p.min_iou) & ~both & (app_dist[np.ix_(d_idx, t_idx)] <= p.max_appearance),
                            1.0 - iou + p.appearance_weight * app_dist[np.ix_(d_idx, t_idx)], np.inf)
            found = [(d_idx[a], t_idx[b]) for a, b in _assign(cost)]
            matches += found
            free_d -= {i for i, _ in found}
            free_t -= {j for _, j in found}

        # 3. re-identification of lost tracks: appearance, and reachable distance where both are on the pitch
        d_idx = sorted(free_d)
        t_idx = [j for j in sorted(free_t) if tracks[j].frame != previous_frame or tracks[j].shot != shot]
        if p.reid and d_idx and t_idx:
            # clearly the closest among all the frame's detections and all live tracks, not only the free ones
            # and by more than half the change of a player's own appearance from one sighting to the next
            spread = float(np.median(same)) if len(same) >= 20 else np.inf
            clear = _unambiguous(app_dist, p.reid_ratio, 0.5 * spread)[np.ix_(d_idx, t_idx)]
            clear[clear > reid_gate] = np.inf
            cost = p.appearance_weight * clear
            for b, j in enumerate(t_idx):
                kf = tracks[j].kalman
                if kf is None:
                    continue
                reach = p.gate + p.max_speed * (t - kf.t)  # since its last position on the pitch
                for a, i in enumerate(d_idx):
                    if has_pitch[i]:
                        dist = float(np.hypot(*(pitch[i] - kf.position)))
                        cost[a, b] = np.inf if dist > reach else cost[a, b] + dist / reach
            found = [(d_idx[a], t_idx[b]) for a, b in _assign(cost)]
            matches += found
            free_d -= {i for i, _ in found}

        for i, j in matches:
            tr = tracks[j]
            tr.appearance = p.ema * tr.appearance + (1.0 - p.ema) * app[i]
            tr.appearance /= max(float(np.linalg.norm(tr.appearance)), 1e-9)
            tr.box, tr.t, tr.frame, tr.shot, tr.on_pitch = boxes[i], t, int(f), shot, bool(has_pitch[i])
            if has_pitch[i]:
                if tr.kalman is None:
                    tr.kalman = PitchKalman(pitch[i], t)
                else:
                    tr.kalman.update(pitch[i], t)
            tr.seen += 1
            ids[rows[i]] = tr.id
        for i in sorted(free_d):
            tr = _Track(next_id, app[i] / max(float(np.linalg.norm(app[i])), 1e-9), boxes[i], t, int(f), shot,
                        PitchKalman(pitch[i], t) if has_pitch[i] else None, bool(has_pitch[i]))
            tracks.append(tr)
            ids[rows[i]] = next_id
            next_id += 1
        previous_frame = int(f)
    return ids

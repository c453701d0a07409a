"""The ``tracking`` stage (game level): ``players.track`` for every detection of a half, online over its sampled
frames in order (:func:`matchflow.models.tracking.tracker.track_half`).

It runs once per half after the half's chunks are written. Motion is judged on the pitch (the ``localization``
stage's ``pitch_x``, ``pitch_y``, null without a valid calibration), overlap in the image, appearance from the
``reid`` embeddings (``appearance: reid``, the default) or from the kit colours (``appearance: colour``, for a
chain without ``reid``; colours cannot tell teammates apart, so nothing is re-identified after a cut).

Camera shots: a new shot starts where the calibration turns valid or invalid, or where the camera's view on the
pitch jumps (the pitch point under the image centre moves more than ``cut_jump`` metres between two samples), or,
while there is no calibration, where no box of a frame overlaps a box of the previous one. Boxes are compared in
the image only within a shot, so a cut never joins two players whose boxes happen to overlap.
Track ids are 0, 1, 2, ... in order of first appearance, unique within the half.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from matchflow.stages.base import GameStage, HalfData, StageParams

_PLAYERS = ("players.det", "players.x1", "players.y1", "players.x2", "players.y2", "players.pitch_x",
            "players.pitch_y")
_COLOUR = ("players.color_r", "players.color_g", "players.color_b")
_CALIBRATION = ("calibration.valid", "calibration.homography", "frames.width", "frames.height")


class TrackingParams(StageParams):
    """``stage_params.tracking`` (see the module docstring; the association settings are those of
    :class:`matchflow.models.tracking.tracker.TrackerParams`)."""

    appearance: Literal["reid", "colour"] = "reid"
    max_speed: float = Field(9.0, gt=0, description="m/s")
    max_lost: float = Field(30.0, ge=0, description="seconds a lost track can be re-identified")
    pitch_gap: float = Field(30.0, ge=0, description="seconds unseen over which a track is still followed on the pitch")
    min_iou: float = Field(0.2, gt=0, le=1)
    cut_jump: float = Field(25.0, gt=0, description="metres the view may move between samples within a shot")


def shots(frame: np.ndarray, valid: np.ndarray, homography: np.ndarray, size: np.ndarray, boxes_of: Mapping[int, np.ndarray],
          cut_jump: float) -> dict[int, int]:
    """The shot number of each sampled frame (``frame`` (T,) in order, ``valid`` (T,) bool, ``homography``
    (T, 9) image->pitch, ``size`` (T, 2) width, height; ``boxes_of`` the boxes of each frame)."""
    from matchflow.models.tracking.tracker import box_iou

    out: dict[int, int] = {}
    shot = 0
    previous: tuple[int, bool, np.ndarray | None] | None = None
    for k, f in enumerate(frame):
        centre = None
        if valid[k]:
            h = homography[k].reshape(3, 3)
            q = h @ np.array([size[k][0] / 2.0, size[k][1] * 0.6, 1.0])
            centre = q[:2] / q[2] if abs(q[2]) > 1e-12 else None
        if previous is not None:
            pf, pvalid, pcentre = previous
            if bool(valid[k]) != pvalid:
                shot += 1
            elif valid[k] and (centre is None or pcentre is None or np.hypot(*(centre - pcentre)) > cut_jump):
                shot += 1
            elif not valid[k]:
                a, b = boxes_of.get(int(f), np.zeros((0, 4))), boxes_of.get(pf, np.zeros((0, 4)))
                if len(a) and len(b) and box_iou(a, b).max() < 0.3:
                    shot += 1
        out[int(f)] = shot
        previous = (int(f), bool(valid[k]), centre)
    return out


class TrackingStage(GameStage):
    """Tracks over the half (see the module docstring)."""

    name = "tracking"
    Params = TrackingParams
    params: TrackingParams
    reads: tuple[str, ...] = (*_PLAYERS, *_CALIBRATION, "reid.det", "reid.row", "arrays/reid")
    writes: tuple[str, ...] = ("players.track",)
    version = "2"  # 2: tracks followed on the pitch through 30 s unseen

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        if self.params.appearance == "colour":
            self.reads = (*_PLAYERS, *_COLOUR, *_CALIBRATION)

    def process_half(self, half: HalfData) -> None:
        from matchflow.models.tracking.tracker import HalfDetections, TrackerParams, colour_features, track_half

        p = half.table("players")
        n = len(p["frame"])
        if n == 0:
            half.put_columns("players", track=np.zeros(0, np.int32))
            return
        frame = np.asarray(p["frame"], np.int64)
        boxes = np.stack([np.asarray(p[c], np.float64) for c in ("x1", "y1", "x2", "y2")], axis=1)
        pitch = np.stack([np.asarray(p["pitch_x"], np.float64), np.asarray(p["pitch_y"], np.float64)], axis=1)
        if self.params.appearance == "reid":
            appearance = embeddings_of_rows(half, frame, np.asarray(p["det"], np.int64))
        else:
            rgb = np.stack([np.nan_to_num(np.asarray(p[c], np.float64), nan=128.0)
                            for c in ("color_r", "color_g", "color_b")], axis=1)
            appearance = colour_features(rgb)
        cal = half.table("calibration")
        fr = half.table("frames")
        sizes = {int(f): (w, h) for f, w, h in zip(fr["frame"], fr["width"], fr["height"])}
        valid_of = {int(f): (bool(v) if v is not None and v == v else False, hm)
                    for f, v, hm in zip(cal["frame"], cal["valid"], cal["homography"])}
        frames = np.unique(frame)
        valid = np.array([valid_of.get(int(f), (False, None))[0] and valid_of[int(f)][1] is not None for f in frames])
        hom = np.stack([np.asarray(valid_of[int(f)][1], np.float64) if valid[k] else np.full(9, np.nan)
                        for k, f in enumerate(frames)])
        size = np.array([sizes.get(int(f), (1920, 1080)) for f in frames], np.float64)
        boxes_of = {int(f): boxes[frame == f] for f in frames}
        shot_of = shots(frames, valid, hom, size, boxes_of, self.params.cut_jump)
        t = np.asarray(p["t"], np.float64)
        det = HalfDetections(frame, t, boxes, pitch, appearance, np.array([shot_of[int(f)] for f in frame]))
        params = TrackerParams(max_speed=self.params.max_speed, max_lost=self.params.max_lost,
                               short_gap=self.params.pitch_gap,
                               min_iou=self.params.min_iou, reid=self.params.appearance == "reid")
        half.put_columns("players", track=track_half(det, params))


def embeddings_of_rows(half: HalfData, frame: np.ndarray, det: np.ndarray) -> np.ndarray:
    """The ``reid`` embedding (float64, unit length) of each ``players`` row (``frame``, ``det``) of the half;
    ValueError naming the half when a row has none."""
    r = half.table("reid")
    array = half.array("reid")
    where = {(int(f), int(d)): int(row) for f, d, row in zip(r["frame"], r["det"], r["row"])}
    rows = np.array([where.get((int(f), int(d)), -1) for f, d in zip(frame, det)])
    if np.any(rows < 0) or np.any(rows >= len(array)):
        missing = int(np.sum((rows < 0) | (rows >= len(array))))
        raise ValueError(f"game {half.ctx.game!r} half {half.ctx.half}: {missing} of {len(rows)} players rows have no "
                         "reid embedding; run the reid stage on the same detections (or appearance: colour)")
    out = np.asarray(array[rows], np.float64)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

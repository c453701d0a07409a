"""The ``localization`` stage: players and the ball on the pitch, who is on the field, players' colours.

Per player (``players`` rows of the detection stage): ``pitch_x``, ``pitch_y`` (metres, SoccerNet pitch
frame) of the middle of the box's bottom edge through the frame's image->pitch homography, null without a
valid calibration; ``on_field`` (the foot point inside the pitch grown by ``field_margin_m`` and the box
touching the frame's grass field region; without a valid calibration, the field region alone decides);
``color_r/g/b`` (mean RGB of the player's own pixels: the non-grass pixels of its instance mask, or of its box
when the mask has fewer than ``min_mask_pixels`` of them); ``area`` (box area, native pixels²). Per ball row:
``pitch_x``, ``pitch_y``, the ground-plane projection of the ball's pixel (a ball in the air lands behind
its true position). Functions: :mod:`matchflow.models.representations.localization`.

Parameters (``stage_params.localization``):

- ``field_margin_m`` (1.0): metres beyond the touchlines and goal lines still counted as on the field;
- ``min_mask_pixels`` (6): instance-mask pixels (detector grid, about 5x5 native pixels each at 720p) under
  which a player's colour comes from its box;
- ``field_mask_width`` (160): width in pixels of the per-frame field mask.

The instance masks are read on the grid the stage that wrote them describes in the batch's
``array_attrs["masks"]`` (``working_scale``, ``mask_stride``; the detection stage sets them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from matchflow.stages.base import IMAGE, Batch, FrameStage, StageParams


class LocalizationParams(StageParams):
    """``stage_params.localization`` (see the module docstring)."""

    field_margin_m: float = Field(1.0, ge=0)
    min_mask_pixels: int = Field(6, ge=1)
    field_mask_width: int = Field(160, ge=16)


class LocalizationStage(FrameStage):
    """Pitch positions, on-field flags, colours and areas of players; pitch positions of the ball."""

    name = "localization"
    Params = LocalizationParams
    params: LocalizationParams
    reads = (
        IMAGE, "players.x1", "players.y1", "players.x2", "players.y2",
        "calibration.homography", "calibration.valid", "arrays/masks", "ball.x", "ball.y",
    )
    writes = (
        "players.pitch_x", "players.pitch_y", "players.on_field", "players.color_r", "players.color_g",
        "players.color_b", "players.area", "ball.pitch_x", "ball.pitch_y",
    )
    version = "2"  # 2: kit colours from the non-grass pixels of the mask only

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        self.margin = self.params.field_margin_m
        self.min_mask_pixels = self.params.min_mask_pixels
        self.mask_width = self.params.field_mask_width

    def process(self, batch: Batch) -> None:
        out = localize_batch(
            batch.frame, batch.image, batch.tables["players"], batch.tables["calibration"],
            batch.arrays.get("masks"), batch.tables["ball"], margin_m=self.margin,
            min_mask_pixels=self.min_mask_pixels, field_mask_width=self.mask_width,
            mask_grid=_mask_grid(batch.array_attrs.get("masks")),
        )
        players, ball = out
        batch.put_columns("players", **players)
        batch.put_columns("ball", **ball)


def _mask_grid(attrs: dict[str, Any] | None) -> tuple[float, int]:
    """(working scale, stride) of the masks grid from the attributes its stage put with it."""
    if not attrs or "working_scale" not in attrs or "mask_stride" not in attrs:
        raise ValueError(
            "stage 'localization': the `masks` array of the batch comes without `working_scale` and `mask_stride` "
            "attributes (Batch.put_array(..., attrs=...)), so its pixels cannot be mapped to the frame"
        )
    return float(attrs["working_scale"]), int(attrs["mask_stride"])


def homographies_by_frame(frame: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """(B, 3, 3) image->pitch homographies of the batch's frames ``frame`` (B,), NaN where the calibration
    is not valid, from the ``calibration`` rows (``homography``: 9 values or None per row; ``valid``)."""
    out = np.full((len(frame), 3, 3), np.nan)
    index = {int(f): i for i, f in enumerate(frame)}
    for f, hom, ok in zip(calibration["frame"], calibration["homography"], calibration["valid"]):
        if ok and hom is not None:
            out[index[int(f)]] = np.asarray(hom, dtype=np.float64).reshape(3, 3)
    return out


def localize_batch(
    frame: np.ndarray,
    images: np.ndarray,
    players: dict[str, np.ndarray],
    calibration: dict[str, Any],
    masks: np.ndarray | None,
    ball: dict[str, np.ndarray] | None = None,
    margin_m: float = 1.0,
    min_mask_pixels: int = 6,
    field_mask_width: int = 160,
    mask_grid: tuple[float, int] = (1.0, 1),
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The stage's work on plain arrays: the new ``players`` columns and ``ball`` columns (row order kept).

    ``frame`` (B,) sampled frames of ``images`` (B, H, W, 3) RGB; ``players`` / ``ball`` / ``calibration``:
    column dicts as the detection and calibration stages put them; ``masks`` (B, h, w) instance ids or None,
    on a grid of ``mask_grid`` = (working scale, stride): mask pixel (a, b) is native pixel
    ((stride b + 0.5) / scale - 0.5, (stride a + 0.5) / scale - 0.5).
    """
    from matchflow.models.representations import localization as loc

    n_frames, hgt, wid = images.shape[:3]
    size = (wid, hgt)
    homs = homographies_by_frame(frame, calibration)
    index = {int(f): i for i, f in enumerate(frame)}
    pf = np.asarray(players["frame"])
    boxes = np.stack([np.asarray(players[k], np.float64) for k in ("x1", "y1", "x2", "y2")], axis=1).reshape(-1, 4)
    n = len(pf)
    pitch = np.full((n, 2), np.nan)
    field_ok = np.zeros(n, bool)
    calibrated = np.zeros(n, bool)
    colors = np.zeros((n, 3), np.uint8)
    scale, stride = mask_grid
    rows_of = _rows_by_frame(pf, index, n_frames)
    for i in range(n_frames):
        rows = rows_of[i]
        if len(rows) == 0:
            continue
        b = boxes[rows]
        if np.isfinite(homs[i]).all():
            calibrated[rows] = True
            pitch[rows] = loc.image_to_pitch(homs[i], loc.foot_points(b), size)
        field = loc.field_mask(images[i], field_mask_width)
        field_ok[rows] = loc.boxes_touch_field(b, field)
        colors[rows], _ = loc.player_colors(
            images[i], b, None if masks is None else masks[i], scale, stride=stride,
            min_mask_pixels=min_mask_pixels, grass=field.grass,
        )
    onf = loc.on_field(pitch, field_ok, calibrated, margin_m)
    out_players = {
        "pitch_x": pitch[:, 0].astype(np.float32), "pitch_y": pitch[:, 1].astype(np.float32), "on_field": onf,
        "color_r": colors[:, 0], "color_g": colors[:, 1], "color_b": colors[:, 2], "area": loc.box_areas(boxes),
    }
    out_ball: dict[str, np.ndarray] = {}
    if ball is not None:
        bf = np.asarray(ball["frame"])
        bp = np.full((len(bf), 2), np.nan)
        for j, f in enumerate(bf):
            i = index[int(f)]
            if np.isfinite(homs[i]).all():
                bp[j] = loc.image_to_pitch(homs[i], np.array([[ball["x"][j], ball["y"][j]]], np.float64), size)[0]
        out_ball = {"pitch_x": bp[:, 0].astype(np.float32), "pitch_y": bp[:, 1].astype(np.float32)}
    return out_players, out_ball


def _rows_by_frame(row_frame: np.ndarray, index: dict[int, int], n_frames: int) -> list[np.ndarray]:
    """Row indices of each of the batch's frames (rows of one frame are contiguous or not: both work)."""
    pos = np.fromiter((index[int(f)] for f in row_frame), dtype=np.int64, count=len(row_frame))
    order = np.argsort(pos, kind="stable")
    bounds = np.searchsorted(pos[order], np.arange(n_frames + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(n_frames)]

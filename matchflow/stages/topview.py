"""The ``topview`` stage: the colour composition and binary-channel top views of every sampled frame.

Reads the players' pitch positions (``players.pitch_x``, ``pitch_y``, metres), ``on_field`` and mean colours
(``color_r/g/b``) written by the ``localization`` stage, and the calibration (``calibration.homography_inv``,
pitch metres to native image pixels; ``valid``). Writes ``arrays/topview_cc`` (T, 224, 224, 3) uint8 RGB and
``arrays/topview_bc`` (T, 3, 224, 224) uint8 of 0/1 (channels: lines, seen polygon, players), see
:mod:`matchflow.models.representations.topview`. Only ``on_field`` players with a finite position are drawn; a frame without
a valid calibration has the lines only.

Parameters (``stage_params.topview``): ``layout``: ``ccbv`` (default, aspect kept, 5 m margin) or ``calf``
(stretched radar layout). The Zarr attributes of both arrays hold the pitch-to-top-view matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import field_validator

from matchflow.stages.base import Batch, FrameStage, StageParams
from matchflow.storage.arrays import ArraySpec
from matchflow.video import VideoInfo


class TopviewParams(StageParams):
    """``stage_params.topview``: ``layout`` (see the module docstring)."""

    layout: str = "ccbv"

    @field_validator("layout")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        from matchflow.models.representations.topview import LAYOUTS

        if value not in LAYOUTS:
            raise ValueError(f"expected one of {list(LAYOUTS)}, got {value!r}")
        return value


def _float_column(values: Any) -> np.ndarray:
    """A numeric column as float64, None/null as NaN."""
    arr = np.asarray(values)
    if arr.dtype == object:
        arr = np.array([np.nan if v is None else v for v in arr], dtype=float)
    return arr.astype(float, copy=False)


def _bool_column(values: Any) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == object:
        return np.array([bool(v) if v is not None else False for v in arr], dtype=bool)
    return arr.astype(bool, copy=False)


def frame_homographies(calibration: dict[str, Any], frames: np.ndarray) -> list[np.ndarray | None]:
    """The pitch-to-image homography (3x3) of each sampled frame of ``frames`` from the rows of the
    ``calibration`` table, None where the frame has no row, is not ``valid`` or has a non-finite matrix."""
    out: list[np.ndarray | None] = [None] * len(frames)
    index = {int(f): i for i, f in enumerate(frames)}
    valid = _bool_column(calibration["valid"])
    for f, ok, hinv in zip(calibration["frame"], valid, calibration["homography_inv"]):
        if not ok or hinv is None:
            continue
        h = np.asarray(hinv, dtype=float).reshape(3, 3)
        i = index.get(int(f))
        if i is not None and np.isfinite(h).all():
            out[i] = h
    return out


class TopviewStage(FrameStage):
    """Top views (colour composition and binary channels) of each frame; see the module docstring."""

    name = "topview"
    Params = TopviewParams
    params: TopviewParams
    reads = (
        "players.pitch_x", "players.pitch_y", "players.on_field",
        "players.color_r", "players.color_g", "players.color_b",
        "calibration.homography_inv", "calibration.valid",
    )
    writes = ("arrays/topview_cc", "arrays/topview_bc")
    version = "1"

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        self.layout = self.params.layout

    def array_specs(self, video: VideoInfo) -> dict[str, ArraySpec]:
        from matchflow.models.representations.topview import (
            BC_CHANNELS,
            SIZE,
            layout_attrs,
        )

        attrs = layout_attrs(self.layout)
        cc = dict(attrs, axes="frame, row (v), column (u), RGB", values="uint8 RGB 0..255",
                  meaning="field black (0), lines and the seen polygon's contour white (255), players' squares "
                          "in their mean RGB colour, drawn last")
        bc = dict(attrs, axes="frame, channel, row (v), column (u)", values="0 or 1",
                  channels=list(BC_CHANNELS),
                  meaning="channel 0: generic field lines; 1: the filled polygon of the pitch the camera sees; "
                          "2: the players' squares (no colour)")
        return {"topview_cc": ArraySpec((SIZE, SIZE, 3), "uint8", 0, cc),
                "topview_bc": ArraySpec((3, SIZE, SIZE), "uint8", 0, bc)}

    def process(self, batch: Batch) -> None:
        from matchflow.models.representations.topview import SIZE, renderer

        r = renderer(self.layout)
        n = len(batch)
        size = (int(batch.image.shape[2]), int(batch.image.shape[1]))  # (width, height) of the native frames
        homs = frame_homographies(batch.tables["calibration"], batch.frame)
        p = batch.tables["players"]
        row_frame = np.asarray(p["frame"], dtype=np.int64)
        xy = np.stack([_float_column(p["pitch_x"]), _float_column(p["pitch_y"])], axis=1).reshape(-1, 2)
        rgb = np.stack([np.asarray(p[c]) for c in ("color_r", "color_g", "color_b")], axis=1).reshape(-1, 3)
        rgb = np.nan_to_num(rgb.astype(float)).clip(0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
        draw = _bool_column(p["on_field"]) & np.isfinite(xy).all(axis=1)
        cc = np.empty((n, SIZE, SIZE, 3), np.uint8)
        bc = np.empty((n, 3, SIZE, SIZE), np.uint8)
        for i in range(n):
            rows = np.flatnonzero(draw & (row_frame == batch.frame[i]))
            r.render(homs[i], size, xy[rows], rgb[rows], out_cc=cc[i], out_bc=bc[i])
        batch.put_array("topview_cc", cc)
        batch.put_array("topview_bc", bc)

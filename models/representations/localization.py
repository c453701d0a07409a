"""Player localization on the pitch, as plain functions over numpy arrays (the paper's section 3).

Conventions: pixels are the video's native pixels, OpenCV convention (x right, y down, pixel centres at
integers); boxes are ``x1, y1, x2, y2`` (N, 4). Pitch positions are metres in SoccerNet's pitch frame (origin
at the centre spot, +x toward the right goal, +y toward the main camera; see DESIGN.md). Homographies map
image pixels to pitch metres, 3x3 (the ``calibration.homography`` column, reshaped).

- :func:`foot_points` / :func:`image_to_pitch`: the middle of a box's bottom edge, through the homography,
  onto the grass (z = 0). A point above the horizon has no ground position: NaN, never a guess.
- :func:`field_mask` / :func:`boxes_touch_field`: a cheap per-frame field mask (the convex hull of the frame's
  dominant green at 160 pixels wide) and the test that a box's bottom touches it (the paper's field-mask filter).
- :func:`on_field`: the two tests together (see its docstring for the rule without a calibration).
- :func:`player_colors`: mean RGB of each player's own pixels: the non-grass pixels of its instance mask, or of
  its box when the mask has too few.
- :func:`box_areas`: box area in native pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from matchflow.models.calibration.segmentation import GrassColour, grass_colour, grass_pixels
from matchflow.models.geometry.pitch import PitchModel

__all__ = [
    "FieldMask",
    "GrassColour",
    "grass_colour",
    "grass_pixels",
    "foot_points",
    "image_to_pitch",
    "inside_pitch",
    "field_mask",
    "boxes_touch_field",
    "on_field",
    "player_colors",
    "box_areas",
    "FIELD_MASK_WIDTH",
    "MIN_MASK_PIXELS",
]

FIELD_MASK_WIDTH = 160  # pixels: width of the per-frame field mask (8 native pixels per mask pixel at 1280)
MIN_MASK_PIXELS = 6  # instance-mask pixels (decoder grid) under which a player's colour comes from its box
_PITCH = PitchModel()


# ----------------------------------------------------------------------------------------------- geometry
def foot_points(boxes: np.ndarray) -> np.ndarray:
    """(N, 2) middle of the bottom edge of each box (N, 4), native pixels: ``((x1 + x2) / 2, y2)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2.0, b[:, 3]], axis=1)


def image_to_pitch(h: np.ndarray, points: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Map image points (N, 2) native pixels through the image->pitch homography ``h`` (3x3 or 9 values) onto
    the grass plane: (N, 2) pitch metres. Points on the far side of the horizon (their homogeneous w has the
    opposite sign of the image's bottom centre, which is always grass in a broadcast view) have no ground
    position and come back NaN; an all-NaN ``h`` (no calibration) gives NaN everywhere.

    ``image_size`` = (width, height) pixels. This is the ground-plane projection: for a ball in the air it is
    the point on the grass seen behind the ball, not the point below it.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(h, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(m).all():
        return np.full((len(pts), 2), np.nan)
    q = pts @ m[:, :2].T + m[:, 2]
    ref = m @ np.array([image_size[0] / 2.0, image_size[1] - 1.0, 1.0])
    ok = (np.sign(q[:, 2]) == np.sign(ref[2])) & (np.abs(q[:, 2]) > 1e-12)
    out = np.full((len(pts), 2), np.nan)
    out[ok] = q[ok, :2] / q[ok, 2:3]
    return out


def inside_pitch(xy: np.ndarray, margin_m: float = 1.0, pitch: PitchModel = _PITCH) -> np.ndarray:
    """(N,) bool: pitch positions (N, 2) metres inside the pitch grown by ``margin_m`` metres on every side
    (NaN is outside)."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    with np.errstate(invalid="ignore"):
        return (np.abs(p[:, 0]) <= pitch.half_length + margin_m) & (np.abs(p[:, 1]) <= pitch.half_width + margin_m)


# ----------------------------------------------------------------------------------------------- field mask
@dataclass(frozen=True)
class FieldMask:
    """The field region of one frame at low resolution: ``mask`` (h, w) bool, ``scale`` mask pixels per
    native pixel (mask pixel (a, b) covers native pixels around ((b + 0.5) / scale - 0.5, (a + 0.5) / scale - 0.5)),
    ``grass`` the frame's grass colour (None: no grass found)."""

    mask: np.ndarray
    scale: float
    grass: GrassColour | None = None


def field_mask(image: np.ndarray, width: int = FIELD_MASK_WIDTH) -> FieldMask:
    """The frame's field region: the convex hull of its large grass areas, at ``width`` pixels wide.

    ``image``: RGB (H, W, 3) uint8, native. Grass is the frame's dominant green hue (:func:`grass_colour`);
    the frame is subsampled by nearest neighbour (hue statistics do not need anti-aliasing) and no closing is
    done: the hull fills the holes that players and lines leave. Well under a millisecond per 1280x720 frame
    on one core. A frame with under 4% grass (close-up of the crowd, a bench) has an empty field."""
    hgt, wid = image.shape[:2]
    scale = width / float(wid)
    size = (width, max(1, int(round(hgt * scale))))
    small = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    colour = grass_colour(hsv)
    grass = grass_pixels(hsv, colour)
    out = np.zeros(grass.shape, np.uint8)
    if grass.mean() < 0.04:
        return FieldMask(out.astype(bool), scale, colour)
    g = cv2.morphologyEx(grass.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(g, connectivity=8)
    if n > 1:
        areas = stats[:, cv2.CC_STAT_AREA].copy()
        areas[0] = 0
        keep = (areas >= 0.2 * areas.max())[labels]
        # the hull of the kept pixels is the hull of each row's leftmost and rightmost ones
        rows = np.flatnonzero(keep.any(axis=1))
        left = keep[rows].argmax(axis=1)
        right = keep.shape[1] - 1 - keep[rows, ::-1].argmax(axis=1)
        pts = np.concatenate([np.stack([left, rows], 1), np.stack([right, rows], 1)]).astype(np.int32)
        cv2.fillConvexPoly(out, cv2.convexHull(pts), 1)
    return FieldMask(out.astype(bool), scale, colour)


def boxes_touch_field(boxes: np.ndarray, field: FieldMask, band: float = 0.25) -> np.ndarray:
    """(N,) bool: the bottom ``band`` of each box (N, 4, native pixels; at least one mask pixel tall) holds at
    least one field pixel. Summed-area table: constant time per box."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    m = field.mask
    if len(b) == 0:
        return np.zeros(0, bool)
    if not m.any():
        return np.zeros(len(b), bool)
    sat = np.pad(m.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    hh, ww = m.shape
    s = field.scale
    top = b[:, 3] - band * (b[:, 3] - b[:, 1])
    x0 = np.clip(np.floor(b[:, 0] * s), 0, ww - 1).astype(int)
    x1 = np.clip(np.ceil(b[:, 2] * s), x0 + 1, ww).astype(int)
    y0 = np.clip(np.floor(top * s), 0, hh - 1).astype(int)
    y1 = np.clip(np.ceil(b[:, 3] * s), y0 + 1, hh).astype(int)
    count = sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]
    return count > 0


def on_field(
    pitch_xy: np.ndarray, touches_field: np.ndarray, calibrated: np.ndarray | bool, margin_m: float = 1.0
) -> np.ndarray:
    """(N,) bool: who is on the field.

    With a valid calibration (``calibrated`` True for that row): the foot point's pitch position (N, 2)
    metres lies inside the pitch grown by ``margin_m`` AND the box touches the frame's field region. Without
    one the position is unknown (NaN), so the field region decides alone: a player of a close-up standing on
    grass counts as on the field, a spectator does not. Positions stay NaN either way; nothing is guessed.
    """
    touches = np.asarray(touches_field, bool)
    cal = np.broadcast_to(np.asarray(calibrated, bool), touches.shape)
    return np.where(cal, inside_pitch(pitch_xy, margin_m) & touches, touches)


# ----------------------------------------------------------------------------------------------- colour
def player_colors(
    image: np.ndarray,
    boxes: np.ndarray,
    masks: np.ndarray | None,
    working_scale: float = 1.0,
    stride: int = 4,
    min_mask_pixels: int = MIN_MASK_PIXELS,
    grass: GrassColour | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean RGB colour (N, 3) uint8 of each player of one frame, and (N,) bool: taken from its mask.

    ``image``: RGB (H, W, 3) uint8 native; ``boxes`` (N, 4) native pixels, player i has mask id i + 1;
    ``masks``: (h, w) instance ids on the detector's grid (mask pixel (a, b) is native pixel
    ((stride b + 0.5) / working_scale - 0.5, (stride a + 0.5) / working_scale - 0.5)), or None.
    A player with at least ``min_mask_pixels`` mask pixels that are not grass gets the mean of the native pixels
    at those mask pixels; otherwise the mean of the non-grass pixels of its box (all of the box's pixels if fewer than
    ``min_mask_pixels`` of them are not grass). ``grass``: the frame's grass colour (:attr:`FieldMask.grass`;
    without it, the generic green range is grass)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(b)
    hgt, wid = image.shape[:2]
    sums = np.zeros((n + 1, 3))
    counts = np.zeros(n + 1, np.int64)
    if masks is not None and n:
        a_idx, b_idx = np.nonzero((masks > 0) & (masks <= n))
        if len(a_idx):
            ids = masks[a_idx, b_idx].astype(np.int64)
            x = np.clip(np.rint((stride * b_idx + 0.5) / working_scale - 0.5), 0, wid - 1).astype(np.int64)
            y = np.clip(np.rint((stride * a_idx + 0.5) / working_scale - 0.5), 0, hgt - 1).astype(np.int64)
            px = image[y, x]
            # the player's own pixels only: the coarse mask spills onto the grass around a player
            own = ~grass_pixels(cv2.cvtColor(np.ascontiguousarray(px.reshape(-1, 1, 3)), cv2.COLOR_RGB2HSV), grass)[:, 0]
            ids, px = ids[own], px[own].astype(np.float64)
            counts = np.bincount(ids, minlength=n + 1)
            for c in range(3):
                sums[:, c] = np.bincount(ids, weights=px[:, c], minlength=n + 1)
    from_mask = counts[1:] >= min_mask_pixels
    out = np.zeros((n, 3))
    out[from_mask] = sums[1:][from_mask] / counts[1:][from_mask, None]
    for i in np.flatnonzero(~from_mask):
        out[i] = _box_color(image, b[i], min_mask_pixels, grass)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), from_mask


def _box_color(image: np.ndarray, box: np.ndarray, min_pixels: int, grass: GrassColour | None) -> np.ndarray:
    """Mean RGB of the non-grass pixels of ``box`` (all of them if too few are not grass; the pixel at the
    box centre for a box thinner than a pixel)."""
    hgt, wid = image.shape[:2]
    x0, y0 = int(np.clip(np.floor(box[0]), 0, wid - 1)), int(np.clip(np.floor(box[1]), 0, hgt - 1))
    x1, y1 = int(np.clip(np.ceil(box[2]), x0 + 1, wid)), int(np.clip(np.ceil(box[3]), y0 + 1, hgt))
    crop = image[y0:y1, x0:x1]
    keep = ~grass_pixels(cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV), grass)
    pix = crop[keep] if keep.sum() >= min_pixels else crop.reshape(-1, 3)
    return pix.reshape(-1, 3).astype(np.float64).mean(axis=0)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(N,) float32 box areas in native pixels² (``(x2 - x1) (y2 - y1)``, 0 for an empty box)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)).astype(np.float32)

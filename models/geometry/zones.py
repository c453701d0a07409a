"""Zones of the pitch: the areas of the grass enclosed by the painted lines, as learned calibration segments
them.

Pitch frame as in :mod:`matchflow.models.geometry.pitch` (metres, origin at the centre spot, x along the touchlines,
x = +52.5 the right goal line as seen from the main camera, +y toward the main camera). Labels:

====  ==========================  =====================================================================
 id   name                        area
====  ==========================  =====================================================================
  0   outside                     everything outside the touchlines and goal lines (run-off, stands,
                                  sky, and every pixel above the horizon)
  1   left half                   x < 0 inside the pitch, not in any of the areas below
  2   left penalty area           inside the left penalty area (16.5 m x 40.32 m), not in its goal area
  3   left goal area              inside the left goal area (5.5 m x 18.32 m)
  4   left penalty arc            the "D": within 9.15 m of the left penalty spot, outside the penalty area
  5   left centre circle          within 9.15 m of the centre spot, x < 0
 6-10 right ...                   the same areas in the right half (x >= 0), in the same order
====  ==========================  =====================================================================

Points on a line belong to the area the line encloses (the penalty area includes its lines, the centre
circle its circle); points on the halfway line belong to the right half. Every boundary between two
labels is a painted line, so the edges of a zone map are the markings of the pitch.
"""

from __future__ import annotations

import numpy as np

from matchflow.models.geometry.camera import front_sign
from matchflow.models.geometry.pitch import (
    CENTRE_CIRCLE_RADIUS,
    GOAL_AREA_DEPTH,
    GOAL_AREA_WIDTH,
    PENALTY_AREA_DEPTH,
    PENALTY_AREA_WIDTH,
    PENALTY_SPOT_DISTANCE,
    PitchModel,
)

__all__ = [
    "N_ZONES",
    "ZONE_NAMES",
    "OUTSIDE",
    "zone_of",
    "zone_map",
    "zone_edges",
    "zone_colours",
    "colourize",
]

ZONE_NAMES: tuple[str, ...] = (
    "outside",
    "left half",
    "left penalty area",
    "left goal area",
    "left penalty arc",
    "left centre circle",
    "right half",
    "right penalty area",
    "right goal area",
    "right penalty arc",
    "right centre circle",
)
N_ZONES = len(ZONE_NAMES)
OUTSIDE = 0
_HALF, _PENALTY, _GOAL, _ARC, _CIRCLE = 1, 2, 3, 4, 5  # offsets within a half (right half: + 5)

_DEFAULT_PITCH = PitchModel()


def zone_of(points_xy: np.ndarray, pitch: PitchModel | None = None) -> np.ndarray:
    """Zone label (int array of shape ``points_xy.shape[:-1]``) of pitch points (..., 2) in metres."""
    p = pitch or _DEFAULT_PITCH
    pts = np.asarray(points_xy, dtype=float)
    x, y = pts[..., 0], pts[..., 1]
    ax, ay = np.abs(x), np.abs(y)
    hl, hw = p.half_length, p.half_width
    inside = (ax <= hl) & (ay <= hw)
    penalty = (ax >= hl - PENALTY_AREA_DEPTH) & (ay <= PENALTY_AREA_WIDTH / 2)
    goal = (ax >= hl - GOAL_AREA_DEPTH) & (ay <= GOAL_AREA_WIDTH / 2)
    spot = hl - PENALTY_SPOT_DISTANCE
    arc = ~penalty & ((ax - spot) ** 2 + y * y <= CENTRE_CIRCLE_RADIUS**2)
    circle = x * x + y * y <= CENTRE_CIRCLE_RADIUS**2
    local = np.full(x.shape, _HALF, dtype=np.int64)
    local = np.where(circle, _CIRCLE, local)
    local = np.where(arc, _ARC, local)
    local = np.where(penalty, _PENALTY, local)
    local = np.where(goal, _GOAL, local)
    label = local + np.where(x >= 0, _CIRCLE, 0)
    return np.where(inside, label, OUTSIDE)


def zone_map(
    h_pitch_to_image: np.ndarray, size: tuple[int, int], pitch: PitchModel | None = None
) -> np.ndarray:
    """The zones seen through a pitch-to-image homography in an image of ``size`` = (width, height) pixels:
    (height, width) uint8 labels, each pixel centre warped back to the pitch. Pixels that see the pitch plane
    behind the camera (above the horizon) are :data:`OUTSIDE`."""
    w, h = int(size[0]), int(size[1])
    hom = np.asarray(h_pitch_to_image, dtype=float)
    hom = hom / np.abs(hom).max()
    try:
        inv = np.linalg.inv(hom)
    except np.linalg.LinAlgError:
        return np.zeros((h, w), np.uint8)
    sign = front_sign(hom, (w, h))
    u = np.arange(w, dtype=float)
    v = np.arange(h, dtype=float)
    # q = inv @ (u, v, 1); the image point has w = 1 / q[2] under ``hom``: in front when sign * q[2] > 0
    qx = inv[0, 0] * u[None, :] + inv[0, 1] * v[:, None] + inv[0, 2]
    qy = inv[1, 0] * u[None, :] + inv[1, 1] * v[:, None] + inv[1, 2]
    qw = inv[2, 0] * u[None, :] + inv[2, 1] * v[:, None] + inv[2, 2]
    front = sign * qw > 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        pts = np.stack([qx / qw, qy / qw], axis=-1)
    pts[~front] = 1e9
    return np.where(front, zone_of(pts, pitch), OUTSIDE).astype(np.uint8)


def zone_edges(zones: np.ndarray, field_only: bool = True) -> np.ndarray:
    """(h, w) bool: pixels whose right or lower neighbour has another label (both sides of each boundary are
    marked, so edges are 1 to 2 pixels wide). With ``field_only``, edges between two pixels outside the
    pitch are dropped (none exist for a zone map) and an edge is kept when either side is on the pitch."""
    z = np.asarray(zones)
    out = np.zeros(z.shape, bool)
    dx = z[:, 1:] != z[:, :-1]
    dy = z[1:, :] != z[:-1, :]
    if field_only:
        dx &= (z[:, 1:] != OUTSIDE) | (z[:, :-1] != OUTSIDE)
        dy &= (z[1:, :] != OUTSIDE) | (z[:-1, :] != OUTSIDE)
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    out[1:, :] |= dy
    out[:-1, :] |= dy
    return out


def zone_colours() -> np.ndarray:
    """(N_ZONES, 3) uint8 RGB colours to draw zone maps: dark grey outside, blues left, reds right."""
    return np.array(
        [
            (40, 40, 40),
            (60, 110, 200), (120, 170, 240), (190, 220, 255), (40, 200, 220), (90, 60, 220),
            (200, 80, 60), (240, 150, 120), (255, 215, 190), (230, 200, 40), (220, 60, 160),
        ],
        dtype=np.uint8,
    )


def colourize(zones: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB picture of a zone map."""
    return zone_colours()[np.clip(np.asarray(zones, dtype=np.int64), 0, N_ZONES - 1)]

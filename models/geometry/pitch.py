"""Soccer pitch model (IFAB markings) in SoccerNet's pitch frame.

Frame: metres, origin at the centre spot, x along the touchlines (+length/2 = right goal line as seen from
the main camera), +y toward the main camera's touchline, z down (the crossbar is at z = -2.44).

Line names follow SoccerNet's calibration classes ("Side line top" is the far touchline at y = -width/2,
"Side line left" the goal line at x = -length/2, "Circle left" the left penalty arc, "Goal left post left " with
SoccerNet's trailing space...), plus the markings SoccerNet does not name (spots, corner arcs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from matchflow.models.geometry.camera import clip_polygon, clip_segments, front_sign, view_constraints

__all__ = ["PitchModel", "draw_polylines"]

LINE_WIDTH_M = 0.12
CENTRE_CIRCLE_RADIUS = 9.15
PENALTY_AREA_DEPTH = 16.5
PENALTY_AREA_WIDTH = 40.32
GOAL_AREA_DEPTH = 5.5
GOAL_AREA_WIDTH = 18.32
PENALTY_SPOT_DISTANCE = 11.0
CORNER_ARC_RADIUS = 1.0
SPOT_RADIUS = 0.11
GOAL_WIDTH = 7.32
GOAL_HEIGHT = 2.44


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, step: float) -> np.ndarray:
    """Points (N, 2) on the circle of centre (cx, cy) and radius r from angle a0 to a1 (radians), every
    ``step`` metres or less, both ends included."""
    n = max(2, int(np.ceil(abs(a1 - a0) * r / step)) + 1)
    a = np.linspace(a0, a1, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


@dataclass(frozen=True)
class PitchModel:
    """A pitch of ``length`` x ``width`` metres with IFAB markings; the markings' dimensions are fixed."""

    length: float = 105.0
    width: float = 68.0
    arc_step: float = 0.25

    # ------------------------------------------------------------------------------------------- geometry
    @property
    def half_length(self) -> float:
        return self.length / 2.0

    @property
    def half_width(self) -> float:
        return self.width / 2.0

    @property
    def area(self) -> float:
        """Pitch area in square metres."""
        return self.length * self.width

    def corners(self) -> np.ndarray:
        """(4, 2) pitch corners, counter-clockwise in the (x, y) plane starting at the far left corner."""
        hl, hw = self.half_length, self.half_width
        return np.array([[-hl, -hw], [hl, -hw], [hl, hw], [-hl, hw]], dtype=float)

    def penalty_spots(self) -> np.ndarray:
        """(2, 2) left and right penalty spots."""
        d = self.half_length - PENALTY_SPOT_DISTANCE
        return np.array([[-d, 0.0], [d, 0.0]])

    @cached_property
    def _lines(self) -> dict[str, np.ndarray]:
        hl, hw, s = self.half_length, self.half_width, self.arc_step
        out: dict[str, np.ndarray] = {
            "Side line top": np.array([[-hl, -hw], [hl, -hw]]),
            "Side line bottom": np.array([[-hl, hw], [hl, hw]]),
            "Side line left": np.array([[-hl, -hw], [-hl, hw]]),
            "Side line right": np.array([[hl, -hw], [hl, hw]]),
            "Middle line": np.array([[0.0, -hw], [0.0, hw]]),
            "Circle central": _arc(0.0, 0.0, CENTRE_CIRCLE_RADIUS, 0.0, 2 * np.pi, s),
            "Centre spot": _arc(0.0, 0.0, SPOT_RADIUS, 0.0, 2 * np.pi, s / 4),
        }
        arc_half_angle = np.arccos((PENALTY_AREA_DEPTH - PENALTY_SPOT_DISTANCE) / CENTRE_CIRCLE_RADIUS)
        for side, sign in (("left", -1.0), ("right", 1.0)):
            goal_x = sign * hl

            def inward(d: float) -> float:
                return goal_x - sign * d

            for name, depth, half in (
                ("Big rect.", PENALTY_AREA_DEPTH, PENALTY_AREA_WIDTH / 2),
                ("Small rect.", GOAL_AREA_DEPTH, GOAL_AREA_WIDTH / 2),
            ):
                out[f"{name} {side} top"] = np.array([[goal_x, -half], [inward(depth), -half]])
                out[f"{name} {side} main"] = np.array([[inward(depth), -half], [inward(depth), half]])
                out[f"{name} {side} bottom"] = np.array([[goal_x, half], [inward(depth), half]])
            spot_x = inward(PENALTY_SPOT_DISTANCE)
            facing = 0.0 if sign < 0 else np.pi  # the arc bulges toward the centre of the pitch
            a0, a1 = facing - arc_half_angle, facing + arc_half_angle
            out[f"Circle {side}"] = _arc(spot_x, 0.0, CENTRE_CIRCLE_RADIUS, a0, a1, s)
            out[f"Penalty spot {side}"] = _arc(spot_x, 0.0, SPOT_RADIUS, 0.0, 2 * np.pi, s / 4)
        for vname, cy, a_y in (("top", -hw, 1.0), ("bottom", hw, -1.0)):
            for hname, cx, a_x in (("left", -hl, 1.0), ("right", hl, -1.0)):
                a0 = np.arctan2(0.0, a_x)
                a1 = np.arctan2(a_y, 0.0)
                if a1 - a0 > np.pi:
                    a1 -= 2 * np.pi
                if a0 - a1 > np.pi:
                    a0 -= 2 * np.pi
                out[f"Corner arc {vname} {hname}"] = _arc(cx, cy, CORNER_ARC_RADIUS, a0, a1, s / 4)
        return out

    def lines(self) -> dict[str, np.ndarray]:
        """Every marking on the grass as named polylines (N, 2) in pitch metres (centre lines of the 12 cm
        painted lines; arcs sampled every ``arc_step`` metres; closed circles repeat their first point)."""
        return {k: v.copy() for k, v in self._lines.items()}

    def goal_lines(self) -> dict[str, np.ndarray]:
        """Goal posts and crossbars as named 3D polylines (2, 3) in pitch metres (z = -2.44 at the crossbar).
        "post left"/"post right" are as seen from the pitch centre facing that goal."""
        hl, gw, gh = self.half_length, GOAL_WIDTH / 2, GOAL_HEIGHT
        out = {}
        for side, sign in (("left", -1.0), ("right", 1.0)):
            x = sign * hl
            left_y, right_y = (gw, -gw) if sign < 0 else (-gw, gw)
            post_left = "Goal left post left " if sign < 0 else "Goal right post left"
            out[f"Goal {side} crossbar"] = np.array([[x, left_y, -gh], [x, right_y, -gh]])
            out[post_left] = np.array([[x, left_y, -gh], [x, left_y, 0.0]])
            out[f"Goal {side} post right"] = np.array([[x, right_y, -gh], [x, right_y, 0.0]])
        return out

    def keypoints(self) -> dict[str, np.ndarray]:
        """Named marking intersections and spots as 3D points (3,) in pitch metres."""
        pts: dict[str, np.ndarray] = {"Centre spot": np.zeros(3)}
        for name, line in self._lines.items():
            if "spot" in name or "Circle central" == name:
                continue
            pts[f"{name} start"] = np.append(line[0], 0.0)
            pts[f"{name} end"] = np.append(line[-1], 0.0)
        for side, spot in zip(("left", "right"), self.penalty_spots()):
            pts[f"Penalty spot {side}"] = np.append(spot, 0.0)
        for name, line in self.goal_lines().items():
            pts[f"{name} start"] = line[0]
            pts[f"{name} end"] = line[-1]
        # unique positions: several lines share their ends
        seen: dict[tuple, str] = {}
        for k, v in pts.items():
            seen.setdefault(tuple(np.round(v, 6)), k)
        return {k: pts[k] for k in seen.values()}

    # ------------------------------------------------------------------------------------------- rendering
    def line_mask(
        self, h_pitch_to_image: np.ndarray, size: tuple[int, int], thickness_px: int = 2, antialias: bool = False
    ) -> np.ndarray:
        """Mask (height, width) uint8 of the markings on the grass seen through a pitch-to-image homography
        (pitch metres to pixels) in an image of ``size`` = (width, height): lines ``thickness_px`` pixels
        wide at 255 (edges anti-aliased with ``antialias``).

        Segments are clipped in pitch space against the camera's front half-plane and the image box, so parts
        behind the camera are never drawn. Goal frames are 3D: draw :meth:`goal_lines` with
        :func:`draw_polylines` and a 3x4 projection matrix.
        """
        h = np.asarray(h_pitch_to_image, dtype=float)
        h = h * front_sign(h, size) / np.abs(h).max()
        mask = np.zeros((size[1], size[0]), np.uint8)
        draw_polylines(mask, h, list(self._lines.values()), 255, thickness_px, antialias)
        return mask

    def visible_fraction(self, h_pitch_to_image: np.ndarray, size: tuple[int, int]) -> float:
        """Share (0..1) of the pitch area seen in an image of ``size`` = (width, height) pixels."""
        poly = self.visible_polygon(h_pitch_to_image, size)
        if len(poly) < 3:
            return 0.0
        x, y = poly[:, 0], poly[:, 1]
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0 / self.area)

    def visible_polygon(self, h_pitch_to_image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The part of the pitch seen in the image, as a convex polygon (N, 2) in pitch metres (N = 0: none)."""
        h = np.asarray(h_pitch_to_image, dtype=float)
        h = h * front_sign(h, size) / np.abs(h).max()
        return clip_polygon(self.corners(), view_constraints(h, size))


def draw_polylines(
    image: np.ndarray,
    m: np.ndarray,
    polylines: list[np.ndarray],
    color: int | tuple[int, ...],
    thickness_px: int,
    antialias: bool = True,
) -> None:
    """Draw polylines given in pitch metres ((N, 2) on the grass with a 3x3 homography, or (N, 3) with a 3x4
    projection matrix) into ``image`` in place. ``m`` must give w > 0 in front of the camera; segments are
    clipped to the front of the camera and to the image (with a margin of the line thickness)."""
    size = (image.shape[1], image.shape[0])
    m = np.asarray(m, dtype=float)
    lines = [np.asarray(line, dtype=float) for line in polylines if len(line) >= 2]
    if not lines:
        return
    cons = view_constraints(m / np.abs(m).max(), size, margin=float(thickness_px) + 2.0, near=1e-9)
    a = np.concatenate([line[:-1] for line in lines])
    b = np.concatenate([line[1:] for line in lines])
    line_id = np.repeat(np.arange(len(lines)), [len(line) - 1 for line in lines])
    ca, cb, keep, whole = clip_segments(a, b, cons)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return
    # consecutive kept segments of one polyline whose shared end was not clipped form one run
    breaks = (np.diff(idx) != 1) | (np.diff(line_id[idx]) != 0) | ~whole[idx[:-1], 1] | ~whole[idx[1:], 0]
    shift = 4
    qa = ca[idx] @ m[:, :-1].T + m[:, -1]
    qb = cb[idx] @ m[:, :-1].T + m[:, -1]
    pa = np.round(qa[:, :2] / qa[:, 2:3] * (1 << shift)).astype(np.int32)
    pb = np.round(qb[:, :2] / qb[:, 2:3] * (1 << shift)).astype(np.int32)
    runs = [
        np.vstack([pa[seg[0]][None], pb[seg]]).reshape(-1, 1, 2)
        for seg in np.split(np.arange(len(idx)), np.flatnonzero(breaks) + 1)
    ]
    cv2.polylines(image, runs, False, color, int(thickness_px), cv2.LINE_AA if antialias else cv2.LINE_8, shift)

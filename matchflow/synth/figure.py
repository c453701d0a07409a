"""A simple articulated human figure: 3D joints with a running gait, drawn in the image with OpenCV.

Joints are pitch metres (SoccerNet frame, z down); the figure stands on the grass (its lowest point at z = 0
less the boot's half thickness), faces ``heading`` (radians on the grass) and leans into its run.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["JOINTS", "Looks", "figure_joints", "draw_figure", "figure_extent"]

JOINTS = [
    "head", "neck", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "pelvis",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle", "l_toe", "r_toe", "l_shorts", "r_shorts",
]
_J = {name: i for i, name in enumerate(JOINTS)}

# limb widths as fractions of the body height
_W_UPPER_ARM, _W_FOREARM, _W_THIGH, _W_SHIN, _W_BOOT, _W_TORSO_DEPTH = 0.05, 0.04, 0.075, 0.055, 0.045, 0.12
_HEAD_RADIUS = 0.066
_SHIFT = 3
_ONE = 1 << _SHIFT
_MIN_NUMBER_PX = 6.0  # torso width in pixels below which no shirt number is drawn

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class Looks:
    """How a figure is drawn: part colours (BGR), the shirt ``number`` (0: none; big on the back, small on the
    chest), sleeves down to the wrists or not, and a hair style ("short", "long", "shaved")."""

    shirt: BGR
    shorts: BGR
    socks: BGR
    skin: BGR
    hair: BGR
    boots: BGR = (25, 25, 25)
    number: int = 0
    long_sleeves: bool = False
    hair_style: str = "short"

    @property
    def number_colour(self) -> BGR:
        """White on dark shirts, near black on light ones."""
        b, g, r = self.shirt
        return (245, 245, 245) if 0.114 * b + 0.587 * g + 0.299 * r < 140 else (20, 20, 20)


def figure_joints(
    position: np.ndarray, heading: np.ndarray, phase: np.ndarray, speed: np.ndarray, height: np.ndarray
) -> np.ndarray:
    """Joints (N, len(JOINTS), 3) in pitch metres of N figures standing at ``position`` (N, 2) metres,
    facing ``heading`` (N,) radians, at gait ``phase`` (N,) radians, running at ``speed`` (N,) m/s, of
    ``height`` (N,) metres."""
    n = len(position)
    h = height[:, None]
    fwd = np.stack([np.cos(heading), np.sin(heading), np.zeros(n)], axis=1)
    side = np.stack([-np.sin(heading), np.cos(heading), np.zeros(n)], axis=1)  # the figure's left
    up = np.array([0.0, 0.0, -1.0])

    amp = np.clip(0.075 * speed, 0.04, 0.6)[:, None]
    swing = amp * np.sin(phase)[:, None]
    theta = {"l": swing, "r": -swing}
    cos_p = np.cos(phase)[:, None]
    bend = 1.5 * amp + 0.1  # the swinging leg's knee bends most
    knee = {"l": 0.08 + bend * np.maximum(0.0, cos_p), "r": 0.08 + bend * np.maximum(0.0, -cos_p)}
    lean = (0.02 * speed)[:, None]
    elbow = 0.25 + 1.4 * amp

    def body(a_fwd: float | np.ndarray, a_side: float | np.ndarray, a_up: float | np.ndarray) -> np.ndarray:
        """Offset from the pelvis of an upper-body point, leaning forward."""
        f = a_fwd * np.cos(lean) + a_up * np.sin(lean)
        u = a_up * np.cos(lean) - a_fwd * np.sin(lean)
        return f * fwd + a_side * side + u * up

    def along(angle: np.ndarray, length: np.ndarray) -> np.ndarray:
        """A limb hanging down, swung forward by ``angle`` radians."""
        return length * (np.sin(angle) * fwd + np.cos(angle) * (-up))

    j = np.zeros((n, len(JOINTS), 3))
    j[:, _J["pelvis"]] = 0.0
    j[:, _J["neck"]] = body(0.0, 0.0, 0.315 * h)
    j[:, _J["head"]] = body(0.01 * h, 0.0, 0.40 * h)
    for s, sign in (("l", 1.0), ("r", -1.0)):
        sh = body(0.0, sign * 0.115 * h, 0.285 * h)
        arm = -0.9 * theta[s]
        el = sh + along(arm, 0.17 * h) + sign * 0.02 * h * side
        j[:, _J[f"{s}_shoulder"]] = sh
        j[:, _J[f"{s}_elbow"]] = el
        j[:, _J[f"{s}_wrist"]] = el + along(arm + elbow, 0.16 * h)
        hip = sign * 0.055 * h * side
        kn = hip + along(theta[s], 0.245 * h)
        an = kn + along(theta[s] - knee[s], 0.245 * h)
        j[:, _J[f"{s}_hip"]] = hip
        j[:, _J[f"{s}_knee"]] = kn
        j[:, _J[f"{s}_ankle"]] = an
        j[:, _J[f"{s}_toe"]] = an + 0.13 * h * fwd
        j[:, _J[f"{s}_shorts"]] = hip + 0.4 * (kn - hip)
    # stand on the grass: the lowest foot point rests at the boot's half thickness above it
    lowest = np.max(j[:, [_J["l_ankle"], _J["r_ankle"], _J["l_toe"], _J["r_toe"]], 2], axis=1)
    drop = -lowest - 0.5 * _W_BOOT * height
    j[:, :, 2] += drop[:, None]
    j[:, :, :2] += position[:, None, :]
    return j


def figure_extent(points: np.ndarray, px_per_m: float, height: float) -> tuple[int, int, int, int]:
    """Integer pixel box (x0, y0, x1, y1) that holds everything :func:`draw_figure` draws."""
    pad = (max(_W_THIGH, _W_TORSO_DEPTH, _HEAD_RADIUS * 2) * height * px_per_m) / 2 + 3
    x0, y0 = np.floor(points.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + pad).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def draw_figure(
    image: np.ndarray,
    points: np.ndarray,
    origin: tuple[int, int],
    px_per_m: float,
    height: float,
    looks: Looks,
    left_is_far: bool,
    fill: int | None = None,
) -> None:
    """Draw a figure from its projected joints ``points`` (len(JOINTS), 2) pixels into ``image`` whose
    top-left pixel is ``origin`` in the frame, with its :class:`Looks`; with ``fill``, its silhouette in that
    one value (masks: same outline, no number, not anti-aliased)."""
    aa = cv2.LINE_8 if fill is not None else cv2.LINE_AA
    p = points - np.asarray(origin, dtype=float)
    fixed = [tuple(v) for v in np.round(p * _ONE).astype(np.int64).tolist()]

    def _px(q: np.ndarray) -> tuple[int, int]:
        return int(round(q[0] * _ONE)), int(round(q[1] * _ONE))

    def colour(part: str) -> tuple[int, ...] | int:
        return fill if fill is not None else getattr(looks, part)

    def width(frac: float) -> int:
        return max(1, int(round(frac * height * px_per_m)))

    def limb(a: str, b: str, frac: float, part: str) -> None:
        cv2.line(image, fixed[_J[a]], fixed[_J[b]], colour(part), width(frac), aa, _SHIFT)

    def arm(s: str) -> None:
        limb(f"{s}_shoulder", f"{s}_elbow", _W_UPPER_ARM, "shirt")
        limb(f"{s}_elbow", f"{s}_wrist", _W_FOREARM, "shirt" if looks.long_sleeves else "skin")

    def leg(s: str) -> None:
        limb(f"{s}_hip", f"{s}_knee", _W_THIGH, "skin")
        limb(f"{s}_knee", f"{s}_ankle", _W_SHIN, "socks")
        limb(f"{s}_ankle", f"{s}_toe", _W_BOOT, "boots")

    far, near = ("l", "r") if left_is_far else ("r", "l")
    arm(far)
    leg(far)
    leg(near)
    for s in (far, near):
        limb(f"{s}_hip", f"{s}_shorts", _W_THIGH * 1.25, "shorts")
    shorts = np.array([fixed[_J[k]] for k in ("l_hip", "r_hip", "r_shorts", "l_shorts")], np.int32)
    cv2.fillConvexPoly(image, shorts, colour("shorts"), aa, _SHIFT)
    torso = np.array([fixed[_J[k]] for k in ("l_shoulder", "r_shoulder", "r_hip", "l_hip")], np.int32)
    cv2.fillConvexPoly(image, torso, colour("shirt"), aa, _SHIFT)
    chest = 0.5 * (p[_J["l_shoulder"]] + p[_J["r_shoulder"]])
    pelvis = p[_J["pelvis"]]
    cv2.line(image, _px(chest), _px(0.8 * pelvis + 0.2 * chest), colour("shirt"), width(_W_TORSO_DEPTH), aa, _SHIFT)
    if fill is None and looks.number:
        _draw_number(image, p, looks)
    arm(near)
    r = max(1.0, _HEAD_RADIUS * height * px_per_m)
    head = p[_J["head"]]
    neck = p[_J["neck"]]
    cv2.line(image, _px(neck), _px(0.5 * (neck + head)), colour("skin"), width(0.05), aa, _SHIFT)
    cv2.circle(image, _px(head), int(round(r * _ONE)), colour("skin"), -1, aa, _SHIFT)
    if r >= 2.0 and looks.hair_style != "shaved":
        axes = (int(round(r * 1.05 * _ONE)), int(round(r * 0.75 * _ONE)))
        top = _px(head - np.array([0.0, 0.3 * r]))
        cv2.ellipse(image, top, axes, 0.0, 180.0, 360.0, colour("hair"), -1, aa, _SHIFT)
        if looks.hair_style == "long":  # down the sides of the head to the jaw
            around = (int(round(r * 1.02 * _ONE)),) * 2
            cv2.ellipse(image, _px(head), around, 0.0, 160.0, 380.0, colour("hair"), -1, aa, _SHIFT)


def _draw_number(image: np.ndarray, p: np.ndarray, looks: Looks) -> None:
    """The shirt number on the torso of projected joints ``p`` (pixels, image-local): big on the back, small
    and high on the chest, none when the torso is seen edge-on or too small to hold it."""
    l_sh, r_sh, l_hip, r_hip = (p[_J[k]] for k in ("l_shoulder", "r_shoulder", "l_hip", "r_hip"))
    across = l_sh - r_sh  # the figure's right shoulder to its left one
    up = 0.5 * (l_sh + r_sh) - 0.5 * (l_hip + r_hip)
    span = float(abs(across[0]))
    if span < _MIN_NUMBER_PX or np.linalg.norm(up) < _MIN_NUMBER_PX:
        return
    # seen from the front, the figure's left shoulder is on the image's right (upright: up points to -y)
    front = float(across[0] * up[1] - across[1] * up[0]) < 0
    text = str(looks.number)
    share = 0.45 if front else 0.65  # of the shoulder width the number spans
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = min(share * span / tw, (0.25 if front else 0.45) * float(np.linalg.norm(up)) / th)
    thickness = max(1, int(round(scale * 2.2)))
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    centre = 0.5 * (l_sh + r_sh) - (0.3 if front else 0.45) * up
    if front:  # on the wearer's left chest, which faces the image's right
        centre = centre + 0.2 * across
    org = (int(round(centre[0] - tw / 2)), int(round(centre[1] + th / 2)))
    cv2.putText(image, text, org, font, scale, looks.number_colour, thickness, cv2.LINE_AA)

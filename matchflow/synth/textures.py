"""Textures of the static scene: the grass with its markings, the advertising boards and the crowd.

Every texture is a BGRA uint8 image of a planar rectangle of the stadium; :class:`PlanarTexture` says which
rectangle (its corners in pitch metres) so that it can be warped into a frame through the camera. The grass
texture comes with anisotropic mip levels so that the far side of the pitch, seen at a grazing angle, is not
aliased.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np

from matchflow.models.geometry.pitch import LINE_WIDTH_M, PitchModel

from .stadium import Stadium

__all__ = ["PlanarTexture", "grass_texture", "board_textures", "crowd_textures"]

_LINE_SUPERSAMPLING = 4


@dataclass
class PlanarTexture:
    """An image (BGRA uint8, opaque; given BGR it gets an alpha channel) laid on a plane rectangle of the
    stadium.

    ``origin`` is the pitch point (metres) of the texture's top-left pixel corner, ``u_axis`` and ``v_axis``
    the pitch-frame vectors (metres) spanned by the full texture width and height. ``levels[(kx, ky)]`` is
    the texture shrunk 2**kx times along u and 2**ky times along v.
    """

    image: np.ndarray
    origin: np.ndarray
    u_axis: np.ndarray
    v_axis: np.ndarray
    levels: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image.shape[2] == 3:  # four channels warp about twice as fast as three in OpenCV
            self.image = cv2.cvtColor(self.image, cv2.COLOR_BGR2BGRA)
        self.levels.setdefault((0, 0), self.image)

    def texture_to_pitch(self, kx: int = 0, ky: int = 0) -> np.ndarray:
        """4x3 matrix mapping homogeneous texture pixels (u, v, 1) of level (kx, ky) to homogeneous pitch
        points (x, y, z, 1); pixel centres at integer coordinates, as OpenCV's warps expect."""
        img = self.levels[(kx, ky)]
        h, w = img.shape[:2]
        du = self.u_axis / w
        dv = self.v_axis / h
        o = self.origin + 0.5 * du + 0.5 * dv
        m = np.zeros((4, 3))
        m[:3, 0], m[:3, 1], m[:3, 2] = du, dv, o
        m[3, 2] = 1.0
        return m

    def corners(self) -> np.ndarray:
        """(4, 3) pitch points of the rectangle's corners, in order round the rectangle."""
        o, u, v = self.origin, self.u_axis, self.v_axis
        return np.array([o, o + u, o + u + v, o + v])

    def build_levels(self, max_kx: int, max_ky: int) -> None:
        """Add every mip level up to (max_kx, max_ky), area-averaged."""
        h, w = self.image.shape[:2]
        for kx in range(max_kx + 1):
            for ky in range(max_ky + 1):
                if (kx, ky) not in self.levels:
                    size = (max(1, w >> kx), max(1, h >> ky))
                    self.levels[(kx, ky)] = cv2.resize(self.image, size, interpolation=cv2.INTER_AREA)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise of ``shape`` with features about ``cell`` pixels wide (float32)."""
    small = rng.standard_normal((shape[0] // cell + 3, shape[1] // cell + 3)).astype(np.float32)
    big = cv2.resize(small, (small.shape[1] * cell, small.shape[0] * cell), interpolation=cv2.INTER_CUBIC)
    return big[cell : cell + shape[0], cell : cell + shape[1]]


def grass_texture(stadium: Stadium, rng: np.random.Generator, px_per_m: float = 20.0) -> PlanarTexture:
    """The ground: mown grass with stripes 5.25 m wide along x, texture, lighting, wear, every IFAB marking
    painted 12 cm wide (anti-aliased), and the darker surround up to the stands."""
    x0, x1, y0, y1 = stadium.ground_extent
    w, h = int(round((x1 - x0) * px_per_m)), int(round((y1 - y0) * px_per_m))
    xs = x0 + (np.arange(w, dtype=np.float32) + 0.5) / px_per_m
    ys = y0 + (np.arange(h, dtype=np.float32) + 0.5) / px_per_m
    pitch = stadium.pitch

    base = np.array(stadium.grass_bgr, np.float32)
    stripe = (np.floor((xs + pitch.half_length) / stadium.stripe_width).astype(int) % 2) * 2 - 1
    shade = 1.0 + stadium.stripe_contrast * stripe[None, :].astype(np.float32)
    if stadium.cross_stripes:
        cross = (np.floor((ys + pitch.half_width) / stadium.stripe_width).astype(int) % 2) * 2 - 1
        shade = shade * (1.0 + 0.35 * stadium.stripe_contrast * cross[:, None].astype(np.float32))
    # the mown pattern stops a little outside the lines
    inside = (np.abs(xs)[None, :] < pitch.half_length + 2.0) & (np.abs(ys)[:, None] < pitch.half_width + 2.0)
    shade = np.where(inside, shade, 0.93).astype(np.float32)
    shade *= 1.0 + 0.045 * _smooth_noise(rng, (h, w), int(8 * px_per_m))
    shade *= 1.0 + 0.025 * _smooth_noise(rng, (h, w), max(2, int(1.2 * px_per_m)))
    # lighting: a gentle gradient across the pitch, and, in some stadiums, the shadow of the stand roof
    gx = (xs / pitch.half_length)[None, :]
    gy = (ys / pitch.half_width)[:, None]
    shade *= 1.0 + stadium.light_gradient[0] * gx + stadium.light_gradient[1] * gy
    if stadium.roof_shadow is not None:
        a, b, c = stadium.roof_shadow  # shadow where a x + b y + c > 0, edge softened over ~2 m
        d = a * xs[None, :] + b * ys[:, None] + c
        shade *= 1.0 - 0.28 / (1.0 + np.exp(-d / 0.8))
    img = base[None, None, :] * shade[:, :, None]
    # worn goalmouths and centre: browner, lighter grass
    wear = np.zeros((h, w), np.float32)
    for cx, sx, sy in ((-pitch.half_length + 4.0, 4.5, 5.0), (pitch.half_length - 4.0, 4.5, 5.0), (0.0, 10.0, 6.0)):
        wear += np.exp(-(((xs[None, :] - cx) / sx) ** 2) - ((ys[:, None] / sy) ** 2))
    wear *= stadium.wear * (0.6 + 0.4 * _smooth_noise(rng, (h, w), int(1.5 * px_per_m)).clip(-1, 1))
    img += wear[:, :, None] * (np.array([95.0, 140.0, 150.0], np.float32) - img) * 0.5
    # beyond the boards: the track or concrete in front of the stands
    track = (np.abs(xs)[None, :] > stadium.end_board_x) | (ys[:, None] < -stadium.side_board_y) | (
        ys[:, None] > stadium.near_track_y
    )
    img = np.where(track[:, :, None], np.array(stadium.track_bgr, np.float32) * shade[:, :, None], img)
    img += rng.normal(0.0, 3.0, img.shape).astype(np.float32)

    alpha = _line_coverage(pitch, (x0, y0), (w, h), px_per_m)
    paint = np.array([232.0, 238.0, 236.0], np.float32)
    img += (alpha * 0.92)[:, :, None] * (paint - img)
    tex = PlanarTexture(
        np.clip(img, 0, 255).astype(np.uint8),
        np.array([x0, y0, 0.0]),
        np.array([x1 - x0, 0.0, 0.0]),
        np.array([0.0, y1 - y0, 0.0]),
    )
    tex.build_levels(2, 3)
    return tex


def _line_coverage(
    pitch: PitchModel, origin: tuple[float, float], size: tuple[int, int], px_per_m: float
) -> np.ndarray:
    """Float32 (h, w) share of each texture pixel covered by the 12 cm painted markings."""
    s = _LINE_SUPERSAMPLING
    w, h = size
    ppm = px_per_m * s
    mask = np.zeros((h * s, w * s), np.uint8)
    shift = 3
    polys = []
    for line in pitch.lines().values():
        pts = (line - np.array(origin)) * ppm
        polys.append(np.round(pts * (1 << shift)).astype(np.int32).reshape(-1, 1, 2))
    cv2.polylines(mask, polys, False, 255, max(1, int(round(LINE_WIDTH_M * ppm))), cv2.LINE_8, shift)
    for name, line in pitch.lines().items():
        if "spot" in name:  # spots are discs
            c = (line.mean(axis=0) - np.array(origin)) * ppm
            r = float(np.linalg.norm(line[0] - line.mean(axis=0))) * ppm + LINE_WIDTH_M * ppm / 2
            centre = tuple(int(v) for v in np.round(c * (1 << shift)))
            cv2.circle(mask, centre, int(round(r * (1 << shift))), 255, -1, cv2.LINE_8, shift)
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


_BRANDS = [
    "MATCHFLOW", "NORDAIR", "VOLTA", "KESTREL", "ORBIS BANK", "LUMEN", "PAXTON", "AQUAVIVA", "STRATOS",
    "GRANITE", "FJORD MOTORS", "QUANTA", "HELIX", "MERIDIAN", "SOLARIS", "TIDEWATER",
]


def _board_strip(rng: np.random.Generator, length_m: float, height_m: float, px_per_m: float) -> np.ndarray:
    w, h = int(round(length_m * px_per_m)), max(4, int(round(height_m * px_per_m)))
    img = np.zeros((h, w, 3), np.uint8)
    x = 0
    while x < w:
        pw = int(rng.uniform(6.0, 14.0) * px_per_m)
        bg = tuple(int(v) for v in rng.integers(0, 256, 3))
        fg = (255, 255, 255) if sum(bg) < 380 else (20, 20, 20)
        img[:, x : x + pw] = bg
        text = _BRANDS[int(rng.integers(len(_BRANDS)))]
        scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_DUPLEX, int(h * 0.6), 2)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
        reps = max(1, pw // max(tw + h, 1))
        for k in range(reps):
            tx = x + int((k + 0.5) * pw / reps - tw / 2)
            cv2.putText(img, text, (tx, int(h * 0.8)), cv2.FONT_HERSHEY_DUPLEX, scale, fg, 2, cv2.LINE_AA)
        x += pw
    img[:2] = 40  # frame of the board
    return img


def board_textures(stadium: Stadium, rng: np.random.Generator, px_per_m: float = 20.0) -> list[PlanarTexture]:
    """The advertising boards (0.9 m high, vertical) along the far touchline and behind both goals."""
    hgt = stadium.board_height
    up = np.array([0.0, 0.0, -hgt])
    out = []
    sx, sy = stadium.end_board_x, stadium.side_board_y
    far = _board_strip(rng, 2 * sx, hgt, px_per_m)
    out.append(PlanarTexture(far, np.array([-sx, -sy, -hgt]), np.array([2 * sx, 0.0, 0.0]), -up))
    for sign in (-1.0, 1.0):
        end = _board_strip(rng, 2 * sy, hgt, px_per_m)
        # text reads left to right as seen from the pitch
        o = np.array([sign * sx, -sign * sy, -hgt])
        out.append(PlanarTexture(end, o, np.array([0.0, 2 * sign * sy, 0.0]), -up))
    for t in out:
        t.build_levels(2, 0)
    return out


def _crowd(rng: np.random.Generator, length_m: float, depth_m: float, px_per_m: float, kit_colours: list) -> np.ndarray:
    seat_w, row_d = 0.5, 0.8
    cols, rows = int(length_m / seat_w), int(depth_m / row_d)
    palette = np.array(
        [[30, 30, 30], [200, 200, 200], [40, 40, 120], [120, 60, 30], [60, 90, 140], [150, 150, 60], [90, 40, 90]]
        + [list(c) for c in kit_colours],
        np.float32,
    )
    weights = np.ones(len(palette))
    weights[-len(kit_colours):] = 4.0
    idx = rng.choice(len(palette), size=(rows, cols), p=weights / weights.sum())
    shirts = palette[idx] * rng.uniform(0.45, 1.0, (rows, cols, 1)).astype(np.float32)
    grey = shirts.mean(axis=2, keepdims=True)
    shirts = 0.55 * shirts + 0.45 * grey  # distance and haze wash the colours out
    empty = rng.random((rows, cols)) < 0.12
    shirts[empty] = np.array([70, 70, 75], np.float32)
    cell_w = max(2, int(round(seat_w * px_per_m)))
    cell_h = max(3, int(round(row_d * px_per_m)))
    img = np.repeat(np.repeat(shirts, cell_h, axis=0), cell_w, axis=1)
    # heads: a skin-coloured top part of each occupied cell, the seat row edge dark
    head_h = max(1, cell_h // 3)
    skin = np.array([120, 150, 200], np.float32) * rng.uniform(0.5, 1.05, (rows, cols, 1)).astype(np.float32)
    skin[empty] = np.array([70, 70, 75], np.float32)
    heads = np.repeat(np.repeat(skin, cell_h, axis=0), cell_w, axis=1)
    row_pos = np.arange(img.shape[0]) % cell_h
    col_pos = np.arange(img.shape[1]) % cell_w
    is_head = (row_pos < head_h)[:, None] & (col_pos > 0)[None, :] & (col_pos < cell_w - 1)[None, :]
    img = np.where(is_head[:, :, None], heads, img)
    img[(row_pos == cell_h - 1)] *= 0.45
    # aisles (stairs) and a tier wall
    aisle_every = int(rng.uniform(18, 26) / seat_w) * cell_w
    for x in range(aisle_every // 2, img.shape[1], aisle_every):
        img[:, x : x + cell_w * 2] = np.array([110, 110, 115], np.float32)
    tier = int(rows * rng.uniform(0.45, 0.6)) * cell_h
    img[tier : tier + 2 * cell_h] = np.array([60, 65, 70], np.float32)
    img = cast(np.ndarray, cv2.GaussianBlur(img, (0, 0), 0.6))
    # rows further up the stand are in the roof's shade
    fade = np.linspace(1.0, 0.55, img.shape[0], dtype=np.float32)[::-1]
    img *= fade[:, None, None]
    img = img[: int(depth_m * px_per_m), : int(length_m * px_per_m)]
    img = cv2.resize(img, (int(length_m * px_per_m), int(depth_m * px_per_m)), interpolation=cv2.INTER_AREA)
    return np.clip(img, 0, 255).astype(np.uint8)


def crowd_textures(
    stadium: Stadium, rng: np.random.Generator, kit_colours: list, px_per_m: float = 10.0
) -> list[PlanarTexture]:
    """The stands: planes rising from behind the far-side and end boards at the stadium's rake, full of
    spectators (many in the teams' colours)."""
    out = []
    rake = np.radians(stadium.stand_rake_deg)
    depth = stadium.stand_depth
    up_far = np.array([0.0, -np.cos(rake), -np.sin(rake)]) * depth
    x0, x1, y0, y1 = stadium.ground_extent
    # the far stand runs on over the corners, where it meets the end stands
    reach = depth * np.cos(rake)
    x0, x1 = x0 - reach, x1 + reach
    far = _crowd(rng, x1 - x0, depth, px_per_m, kit_colours)
    # v runs down the stand so that the top rows are at the top of the texture
    out.append(PlanarTexture(far, np.array([x0, y0, 0.0]) + up_far, np.array([x1 - x0, 0.0, 0.0]), -up_far))
    x0, x1, y0 = x0 + reach, x1 - reach, y0 - reach
    for sign in (-1.0, 1.0):
        up_end = np.array([sign * np.cos(rake), 0.0, -np.sin(rake)]) * depth
        img = _crowd(rng, y1 - y0, depth, px_per_m, kit_colours)
        base = np.array([x1 if sign > 0 else x0, y0 if sign > 0 else y1, 0.0])
        out.append(PlanarTexture(img, base + up_end, np.array([0.0, sign * (y1 - y0), 0.0]), -up_end))
    for t in out:
        t.build_levels(2, 2)
    return out

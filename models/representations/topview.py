"""Top views of one frame (SoccerNet calibration representations, section 4.1): a colour composition and
three binary channels, 224 x 224 pixels, drawn from the calibration and the players' pitch positions.

Frames and units:
- pitch: SoccerNet's frame (metres, origin at the centre spot, x along the touchlines, +y toward the main
  camera's touchline);
- top view: OpenCV pixels (u right, v down; pixel (u, v) covers [u - 0.5, u + 0.5] x [v - 0.5, v + 0.5]).
  +x of the pitch is to the right and +y (the main camera's side) at the bottom, as the main camera sees it.

The mapping pitch metres -> top-view pixels is one affine 3x3 matrix per layout (:func:`topview_matrix`):

- ``ccbv`` (default, the paper's representation): aspect kept (the same pixels per metre along x and y, so
  the 8 x 8 squares and distances are isotropic), the 105 x 68 m pitch centred with a 5 m margin beyond the
  goal lines: the view spans x, y in [-57.5, 57.5] m (1.948 px/m); the pitch occupies rows 45 to 178. The
  paper gives only the size (224 px, lines 4 px, players 8 x 8 px); the margin is ours, to keep players
  just outside the lines (throw-ins, corners).
- ``calf``: a radar layout for the calibration branch of CALF: the pitch plus a 2.5 m margin is stretched to
  fill the whole square (x in [-55, 55] m at 2.036 px/m, y in [-36.5, 36.5] m at 3.068 px/m), so no pixel is
  spent outside the pitch and the width of the pitch gets 1.6 times the resolution of ``ccbv``. It is our
  variant for feature extraction, not a reproduction of a published file.

Colour composition (CC, (224, 224, 3) uint8 RGB): field black, IFAB lines white (4 px: pixels whose centre is
less than 2 px from a marking), the contour of the seen part of the pitch white (OpenCV thickness 2), players
as 8 x 8 squares filled with their RGB colour, drawn last.
Binary channels (BC, (3, 224, 224) uint8 of 0 or 1): 0 lines, 1 the filled seen polygon, 2 the players.
Without a valid calibration a frame has the lines only: no polygon, no players (positions are meaningless).

Rendering is deterministic: the static line layer is computed once per layout (no anti-aliasing), and players
are drawn in a fixed order (by top-view row, then column, then colour), so the same set of positions and
colours gives the same pixels in whatever order the players come.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from matchflow.models.geometry.camera import clip_polygon, front_sign, view_constraints
from matchflow.models.geometry.pitch import PitchModel

__all__ = [
    "LAYOUTS", "SIZE", "LINE_PX", "PLAYER_PX", "CONTOUR_PX", "BC_CHANNELS",
    "topview_matrix", "pitch_to_topview", "topview_to_pitch", "TopviewRenderer", "renderer",
    "render_colour_composition", "render_binary_channels", "render_topviews", "layout_attrs", "line_layer",
]

SIZE = 224
LINE_PX = 4
PLAYER_PX = 8
CONTOUR_PX = 2
BC_CHANNELS = ("lines", "seen_polygon", "players")
_SHIFT = 4  # sub-pixel bits of the OpenCV drawing calls

#: layout -> (half extent along x, half extent along y) in metres at the image borders.
_EXTENTS: dict[str, tuple[float, float]] = {
    "ccbv": (57.5, 57.5),  # aspect kept: 52.5 + 5 m along x, the same along y
    "calf": (55.0, 36.5),  # stretched: 52.5 + 2.5 m along x, 34 + 2.5 m along y
}
LAYOUTS = tuple(_EXTENTS)


def topview_matrix(layout: str = "ccbv", size: int = SIZE) -> np.ndarray:
    """The 3x3 affine matrix taking pitch metres (x, y, 1) to top-view pixels (u, v, 1) of a ``size`` x
    ``size`` view: the extent [-X, X] maps onto the image's outer edges [-0.5, size - 0.5], so the centre
    spot is at pixel (size - 1) / 2 in both directions."""
    if layout not in _EXTENTS:
        raise ValueError(f"unknown top-view layout {layout!r}; expected one of {list(LAYOUTS)}")
    hx, hy = _EXTENTS[layout]
    sx, sy = size / (2 * hx), size / (2 * hy)
    c = (size - 1) / 2.0
    return np.array([[sx, 0.0, c], [0.0, sy, c], [0.0, 0.0, 1.0]])


def pitch_to_topview(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Pitch points (N, 2) in metres to top-view pixels (N, 2) through ``matrix``."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    q = p @ matrix[:2, :2].T + matrix[:2, 2]
    return q / (p @ matrix[2, :2] + matrix[2, 2])[:, None]


def topview_to_pitch(pixels: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Top-view pixels (N, 2) back to pitch metres (N, 2)."""
    return pitch_to_topview(pixels, np.linalg.inv(matrix))


def layout_attrs(layout: str = "ccbv", size: int = SIZE) -> dict:
    """Zarr attributes describing a layout, so readers can map pixels back to pitch metres."""
    m = topview_matrix(layout, size)
    hx, hy = _EXTENTS[layout]
    return {
        "layout": layout,
        "pitch_to_topview": m.tolist(),
        "pitch_to_topview_doc": "3x3 row-major, pitch metres (SoccerNet frame: origin centre spot, +x right goal, "
                                "+y toward the main camera) to top-view pixels (OpenCV: u right, v down, pixel "
                                "centres at integers); invert it to map pixels back to metres",
        "extent_m": {"x": [-hx, hx], "y": [-hy, hy]},
        "aspect_kept": bool(np.isclose(m[0, 0], m[1, 1])),
        "pixels_per_metre": [float(m[0, 0]), float(m[1, 1])],
        "size": size,
        "line_px": LINE_PX,
        "player_px": PLAYER_PX,
        "contour_px": CONTOUR_PX,  # cv2.polylines thickness (2 to 3 pixels)
        "no_calibration": "lines only: no seen polygon, no players",
        "players": "on_field players with a finite pitch position, 8x8 squares centred on the position, drawn "
                   "in order of row, column, colour",
    }


_GRID = np.stack(np.meshgrid(np.arange(-52.5, 52.6, 3.5), np.arange(-34.0, 34.1, 4.0)), axis=-1).reshape(-1, 2)


def _front_sign(h: np.ndarray, image_size: tuple[int, int]) -> float:
    """:func:`~matchflow.models.geometry.camera.front_sign` voted on a coarse pitch grid (31 x 18 points instead of
    106 x 69), falling back to the exact vote when fewer than 16 of them are seen; the seen polygon is then the
    same as :meth:`PitchModel.visible_polygon`'s (checked on every camera of the WC14 prior by the tests)."""
    q = _GRID @ h[:, :2].T + h[:, 2]
    w = q[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = q[:, 0] / w, q[:, 1] / w
    inside = (x >= 0) & (x < image_size[0]) & (y >= 0) & (y < image_size[1])
    vote = float(np.sum(np.sign(w[inside])))
    if inside.sum() < 16 or vote == 0:
        return front_sign(h, image_size)
    return 1.0 if vote > 0 else -1.0


def line_layer(
    matrix: np.ndarray, size: int = SIZE, pitch: PitchModel | None = None, width_px: float = LINE_PX
) -> np.ndarray:
    """The IFAB markings in a ``size`` x ``size`` top view, (size, size) uint8 of 0/1: a pixel is on a line
    when its centre lies less than ``width_px / 2`` pixels from the marking's centre line (drawn through
    ``matrix``), so straight lines are exactly ``width_px`` pixels wide whatever their sub-pixel position."""
    pitch = pitch or PitchModel()
    half = width_px / 2.0
    out = np.zeros((size, size), bool)
    for line in pitch.lines().values():
        q = pitch_to_topview(line, matrix)
        for a, b in zip(q[:-1], q[1:]):
            lo = np.maximum(np.floor(np.minimum(a, b) - half), 0).astype(int)
            hi = np.minimum(np.ceil(np.maximum(a, b) + half) + 1, size).astype(int)
            if (hi <= lo).any():
                continue
            cu, cv = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]))
            d = b - a
            t = np.clip(((cu - a[0]) * d[0] + (cv - a[1]) * d[1]) / max(float(d @ d), 1e-12), 0.0, 1.0)
            dist2 = (cu - a[0] - t * d[0]) ** 2 + (cv - a[1] - t * d[1]) ** 2
            out[lo[1] : hi[1], lo[0] : hi[0]] |= dist2 < half * half
    return out.astype(np.uint8)


@dataclass
class _Static:
    cc: np.ndarray  # (S, S, 3) lines white on black
    bc: np.ndarray  # (3, S, S) lines in channel 0


class TopviewRenderer:
    """Renders top views for one layout; the static line layer is drawn once at construction."""

    def __init__(self, layout: str = "ccbv", size: int = SIZE, pitch: PitchModel | None = None) -> None:
        self.layout = layout
        self.size = size
        self.pitch = pitch or PitchModel()
        self.matrix = topview_matrix(layout, size)
        self._corners = self.pitch.corners()
        lines = line_layer(self.matrix, size, self.pitch)
        cc = np.zeros((size, size, 3), np.uint8)
        cc[lines > 0] = 255
        bc = np.zeros((3, size, size), np.uint8)
        bc[0] = lines
        self._static = _Static(cc, bc)
        self._static.cc.flags.writeable = False
        self._static.bc.flags.writeable = False

    # ------------------------------------------------------------------------------------------- pieces
    def lines_cc(self) -> np.ndarray:
        """A fresh copy of the colour composition with the lines only (224, 224, 3)."""
        return self._static.cc.copy()

    def lines_bc(self) -> np.ndarray:
        """A fresh copy of the binary channels with the lines only (3, 224, 224)."""
        return self._static.bc.copy()

    def seen_polygon(self, h_pitch_to_image: np.ndarray | None, image_size: tuple[int, int]) -> np.ndarray:
        """The seen part of the pitch (:meth:`PitchModel.visible_polygon`) in top-view pixels (N, 2) (N = 0:
        none or no calibration). ``image_size`` = (width, height) of the frame the homography maps to."""
        if h_pitch_to_image is None:
            return np.zeros((0, 2))
        h = np.asarray(h_pitch_to_image, dtype=float).reshape(3, 3)
        if not np.isfinite(h).all():
            return np.zeros((0, 2))
        h = h * _front_sign(h, image_size) / np.abs(h).max()
        poly = clip_polygon(self._corners, view_constraints(h, image_size))
        if len(poly) < 3:
            return np.zeros((0, 2))
        return pitch_to_topview(poly, self.matrix)

    def player_squares(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-left corners (N, 2) int (column, row) of the 8 x 8 squares of finite pitch ``positions``
        (N, 2) metres, and the indices of those positions, in drawing order."""
        p = np.asarray(positions, dtype=float).reshape(-1, 2)
        keep = np.flatnonzero(np.isfinite(p).all(axis=1))
        uv = pitch_to_topview(p[keep], self.matrix)
        # a block of P pixels a..a+P-1 is centred at a + (P-1)/2: a = round(u - (P-1)/2)
        corner = np.floor(uv - (PLAYER_PX - 1) / 2.0 + 0.5).astype(np.int64)
        return corner, keep

    def _players(self, positions: np.ndarray, colors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        corner, keep = self.player_squares(positions)
        col = (np.zeros((len(keep), 3), np.uint8) if colors is None
               else np.asarray(colors, dtype=np.uint8).reshape(-1, 3)[keep])
        order = np.lexsort((col[:, 2], col[:, 1], col[:, 0], corner[:, 0], corner[:, 1]))
        return corner[order], col[order], keep[order]

    # ------------------------------------------------------------------------------------------- views
    def render(
        self,
        h_pitch_to_image: np.ndarray | None,
        image_size: tuple[int, int],
        positions: np.ndarray | None = None,
        colors: np.ndarray | None = None,
        out_cc: np.ndarray | None = None,
        out_bc: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Both views of one frame: CC (S, S, 3) uint8 and BC (3, S, S) uint8 of 0/1.

        ``h_pitch_to_image``: pitch metres -> image pixels (3x3), None without a valid calibration (then the
        views hold the lines only); ``image_size``: (width, height) of that image; ``positions``: (N, 2)
        pitch metres of the players to draw (non-finite rows are skipped); ``colors``: (N, 3) uint8 RGB.
        ``out_cc`` / ``out_bc`` receive the views in place when given (e.g. slices of a batch array).
        """
        s = self.size
        cc = out_cc if out_cc is not None else np.empty((s, s, 3), np.uint8)
        bc = out_bc if out_bc is not None else np.empty((3, s, s), np.uint8)
        cc[...] = self._static.cc
        bc[...] = self._static.bc
        poly = self.seen_polygon(h_pitch_to_image, image_size)
        if len(poly) == 0:
            return cc, bc
        pts = np.round(poly * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(bc[1], [pts], 1, cv2.LINE_8, _SHIFT)
        cv2.polylines(cc, [pts], True, (255, 255, 255), CONTOUR_PX, cv2.LINE_8, _SHIFT)
        if positions is None or len(positions) == 0:
            return cc, bc
        corner, col, _ = self._players(positions, colors)
        for (c0, r0), rgb in zip(corner.tolist(), col):
            c1, r1 = min(c0 + PLAYER_PX, s), min(r0 + PLAYER_PX, s)
            c0, r0 = max(c0, 0), max(r0, 0)
            if c1 <= c0 or r1 <= r0:
                continue
            cc[r0:r1, c0:c1] = rgb
            bc[2, r0:r1, c0:c1] = 1
        return cc, bc


@lru_cache(maxsize=8)
def renderer(layout: str = "ccbv", size: int = SIZE) -> TopviewRenderer:
    """The shared renderer of a layout (static layers drawn once per process)."""
    return TopviewRenderer(layout, size)


def render_topviews(
    h_pitch_to_image: np.ndarray | None,
    image_size: tuple[int, int],
    positions: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    layout: str = "ccbv",
) -> tuple[np.ndarray, np.ndarray]:
    """CC (224, 224, 3) and BC (3, 224, 224) of one frame; see :meth:`TopviewRenderer.render`."""
    return renderer(layout).render(h_pitch_to_image, image_size, positions, colors)


def render_colour_composition(
    h_pitch_to_image: np.ndarray | None,
    image_size: tuple[int, int],
    positions: np.ndarray | None = None,
    colors: np.ndarray | None = None,
    layout: str = "ccbv",
) -> np.ndarray:
    """The colour composition (224, 224, 3) uint8 RGB of one frame."""
    return render_topviews(h_pitch_to_image, image_size, positions, colors, layout)[0]


def render_binary_channels(
    h_pitch_to_image: np.ndarray | None,
    image_size: tuple[int, int],
    positions: np.ndarray | None = None,
    layout: str = "ccbv",
) -> np.ndarray:
    """The binary channels (3, 224, 224) uint8 of 0/1 (lines, seen polygon, players) of one frame."""
    return render_topviews(h_pitch_to_image, image_size, positions, None, layout)[1]

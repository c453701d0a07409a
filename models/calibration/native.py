"""Final camera fit against the pitch markings found at the frame's native resolution.

The working-resolution line fit (:mod:`matchflow.models.calibration.refine`) sees a 1280x720 frame at 640 px
wide, where a far line is under a pixel wide, and pairs each marking with the nearest line pixel, which lets the
camera slide along the lines. Its homography lands within a few working pixels of the markings it sees, but
metres away where it extrapolates (the near grass of a view that shows only the centre circle and the far
touchline). This fit finishes the job on the native frame, in the manner of model-based edge tracking:

- every marking is sampled every ``step_m`` metres with its direction on the pitch; each sample is projected
  with the current homography, and the frame's grey levels are read along the image normal of the marking
  within ``radius`` pixels;
- a marking is a *ridge*: brighter than the grass on both sides at the distance its projected width (12 cm)
  predicts, with grass-coloured pixels on both sides. A step edge (the boards' base, a shadow) or a line
  between non-grass pixels (advertising letters) is not one. The strongest ridge gives the observed centre to
  a tenth of a pixel (parabola through the ridge response);
- the camera's 7 parameters (pan, tilt, roll, focal length, position) are fitted by robust least squares to
  the distances along the normals, so each sample constrains only the direction it can measure;
- the search radius shrinks over the iterations (default 48 to 3 px), so a start 40 px off converges and a
  neighbouring line is not taken for the right one at the end.

The result is kept only when it explains at least as many samples within a pixel as the start did.
Everything is in native pixels; homographies map pitch metres to native image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import map_coordinates
from scipy.optimize import least_squares

from matchflow.models.calibration.dictionary import camera_from_params, camera_params
from matchflow.models.calibration.segmentation import grass_colour, grass_pixels
from matchflow.models.geometry.camera import apply_homography, camera_from_homography, front_sign
from matchflow.models.geometry.pitch import PitchModel

__all__ = ["NativeLineFit", "NativeFitResult", "marking_samples"]

#: Width of the painted pitch markings (IFAB: at most 12 cm).
LINE_WIDTH_M = 0.12


def marking_samples(pitch: PitchModel, step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) every ``step_m`` metres or less along every marking (segment midpoints of the subdivision,
    pitch metres) and the unit direction (N, 2) of the marking at each."""
    pts, dirs = [], []
    for line in pitch.lines().values():
        line = np.asarray(line, dtype=float)
        for a, b in zip(line[:-1], line[1:]):
            length = float(np.linalg.norm(b - a))
            if length < 1e-9:
                continue
            n = max(1, int(np.ceil(length / step_m)))
            t = (np.arange(n)[:, None] + 0.5) / n
            pts.append(a + t * (b - a))
            dirs.append(np.repeat(((b - a) / length)[None], n, axis=0))
    return np.concatenate(pts), np.concatenate(dirs)


@dataclass(frozen=True)
class NativeFitResult:
    """``homography``: pitch metres to native pixels (the start when not ``accepted``); ``found``: samples with
    a ridge in the last search; ``inliers_before`` / ``inliers_after``: samples whose ridge lies within
    ``inlier_px`` of the start's / the result's projection."""

    homography: np.ndarray
    accepted: bool
    found: int
    inliers_before: int
    inliers_after: int


@dataclass
class NativeLineFit:
    """The native-resolution fit of the module docstring.

    ``radii``: search half-lengths (native px) of the successive iterations; ``step_m``: spacing of the samples
    along the markings; ``min_contrast``: least ridge height (grey levels, 0..255); ``min_points``: least
    number of ridges for a fit; ``max_width_px``: markings projected wider than this (the grass right below
    the camera) are not searched; ``inlier_px``: the distance that counts a sample as explained.
    """

    pitch: PitchModel = field(default_factory=PitchModel)
    radii: tuple[float, ...] = (48.0, 24.0, 12.0, 6.0, 3.0)
    step_m: float = 0.25
    min_contrast: float = 8.0
    min_points: int = 30
    max_width_px: float = 12.0
    inlier_px: float = 1.0
    profile_step_px: float = 0.5

    def __post_init__(self) -> None:
        self.samples, self.directions = marking_samples(self.pitch, self.step_m)

    def refine(self, image: np.ndarray, h: np.ndarray, grass: np.ndarray | None = None) -> NativeFitResult:
        """Refine the pitch-to-native-image homography ``h`` of the RGB uint8 frame ``image`` (H, W, 3).

        ``grass``: (H, W) bool grass pixels of the frame, computed from its colours when not given.
        """
        size = (image.shape[1], image.shape[0])
        h = np.asarray(h, dtype=float)
        start = NativeFitResult(h, False, 0, 0, 0)
        cam = camera_from_homography(h, size)
        if cam is None:
            return start
        if grass is None:
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
            grass = grass_pixels(hsv, grass_colour(hsv))
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        green = grass.astype(np.float32)
        before = self._inliers(grey, green, h)
        p = camera_params(cam)
        cur, found = h, 0
        for radius in self.radii:
            sel, centres, normals = self._ridges(grey, green, cur, radius)
            found = len(sel)
            if found < self.min_points:
                break
            pts3 = np.column_stack([self.samples[sel], np.zeros(found)])

            def residuals(q: np.ndarray, pts3: np.ndarray = pts3, centres: np.ndarray = centres,
                          normals: np.ndarray = normals) -> np.ndarray:
                xy, depth = camera_from_params(q, size).project(pts3)
                r = np.sum((xy - centres) * normals, axis=1)
                r[depth <= 1e-3] = 1e3
                return r

            sol = least_squares(residuals, p, loss="soft_l1", f_scale=1.0, x_scale="jac", max_nfev=50)
            if not np.all(np.isfinite(sol.x)):
                break
            p = sol.x
            cur = camera_from_params(p, size).homography()
            cur = cur / cur[2, 2]
        after = self._inliers(grey, green, cur)
        accepted = cur is not h and after >= max(before, self.min_points)
        return NativeFitResult(cur if accepted else h, accepted, found, before, after)

    def _inliers(self, grey: np.ndarray, green: np.ndarray, h: np.ndarray) -> int:
        """Samples with a ridge within ``inlier_px`` of their projection by ``h``."""
        sel, centres, normals = self._ridges(grey, green, h, 2.0 * self.inlier_px)
        xy, _ = apply_homography(h, self.samples[sel])
        return int(np.sum(np.abs(np.sum((centres - xy) * normals, axis=1)) <= self.inlier_px))

    def _ridges(self, grey: np.ndarray, green: np.ndarray, h: np.ndarray,
                radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the samples whose projection by ``h`` can be searched: their indices, the centre (native px) of
        the strongest marking ridge within ``radius`` along the normal, and the unit image normal."""
        height, width = grey.shape
        x, w = apply_homography(h, self.samples)
        w = w * front_sign(h, (width, height))  # > 0: in front of the camera
        ahead, _ = apply_homography(h, self.samples + 0.05 * self.directions)
        across = np.column_stack([-self.directions[:, 1], self.directions[:, 0]]) * (0.5 * LINE_WIDTH_M)
        xa, _ = apply_homography(h, self.samples + across)
        xb, _ = apply_homography(h, self.samples - across)
        line_px = np.linalg.norm(xa - xb, axis=1)
        tangent = ahead - x
        tl = np.linalg.norm(tangent, axis=1)
        side = 2.0 + 0.5 * np.nan_to_num(line_px, nan=np.inf)
        reach = radius + side + 2.0
        with np.errstate(invalid="ignore"):
            ok = (w > 0) & np.all(np.isfinite(x), axis=1) & (tl > 1e-9) & (line_px < self.max_width_px)
            ok &= (x[:, 0] > reach) & (x[:, 0] < width - 1 - reach) & (x[:, 1] > reach) & (x[:, 1] < height - 1 - reach)
        idx = np.flatnonzero(ok)
        empty = (idx[:0], np.zeros((0, 2)), np.zeros((0, 2)))
        if len(idx) == 0:
            return empty
        normal = np.column_stack([-tangent[idx, 1], tangent[idx, 0]]) / tl[idx, None]
        offsets = np.arange(-radius, radius + 1e-9, self.profile_step_px)[None, :]
        s = side[idx, None]
        x0, y0 = x[idx, 0, None], x[idx, 1, None]

        def read(img: np.ndarray, off: np.ndarray, order: int) -> np.ndarray:
            px, py = x0 + off * normal[:, 0, None], y0 + off * normal[:, 1, None]
            return map_coordinates(img, [py.ravel(), px.ravel()], order=order).reshape(px.shape)

        ridge = read(grey, offsets, 1) - np.maximum(read(grey, offsets - s, 1), read(grey, offsets + s, 1))
        on_grass = (read(green, offsets - s - 1.0, 0) > 0.5) & (read(green, offsets + s + 1.0, 0) > 0.5)
        ridge = np.where(on_grass, ridge, -1.0)
        k = np.argmax(ridge, axis=1)
        rows = np.arange(len(k))
        n = offsets.shape[1]
        good = (ridge[rows, k] >= self.min_contrast) & (k > 0) & (k < n - 1)
        km = np.clip(k, 1, n - 2)
        a, b, c = ridge[rows, km - 1], ridge[rows, km], ridge[rows, km + 1]
        curvature = a - 2.0 * b + c
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(curvature < 0, 0.5 * (a - c) / curvature, 0.0)
        centre = offsets[0, km] + np.clip(shift, -0.5, 0.5) * self.profile_step_px
        return idx[good], x[idx[good]] + centre[good, None] * normal[good], normal[good]

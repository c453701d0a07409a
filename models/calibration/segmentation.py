"""Classical field segmentation of a broadcast frame: the pitch's grass and the white markings on it.

No weights: grass is found by its colour (the dominant green hue of the frame, estimated per frame so lighting,
grass type and camera white balance do not matter), the field region is the convex hull of the largest grass
area (the pitch seen through a pinhole camera is convex), and markings are pixels inside it that are brighter
than their surroundings, weakly saturated and thin (a white top-hat narrower than a player), kept when they
form elongated structures.

Everything is computed at the working resolution of :mod:`matchflow.models.calibration.base`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from matchflow.models.calibration.base import WORK_WIDTH, FieldObservation, working_size

__all__ = ["ClassicalSegmenter", "GrassColour", "grass_colour", "grass_pixels", "resize_to_working"]


def resize_to_working(image: np.ndarray, width: int = WORK_WIDTH) -> tuple[np.ndarray, float]:
    """The frame resized to ``width`` pixels wide (area interpolation) and the scale (working px per native px)."""
    h, w = image.shape[:2]
    if w == width:
        return image, 1.0
    out = cv2.resize(image, working_size((w, h), width), interpolation=cv2.INTER_AREA)
    return out, width / float(w)


def _ridge(response: np.ndarray) -> np.ndarray:
    """Centre pixels of bright ridges: local maxima of ``response`` across the ridge, the direction of strongest
    (negative) curvature of the smoothed response, quantised to 4 directions as Canny's non-maximum
    suppression does. Thins a line mask to one pixel without moving it."""
    r = cv2.GaussianBlur(response.astype(np.float32), (0, 0), 1.0)
    rxx = cv2.Sobel(r, cv2.CV_32F, 2, 0, ksize=3)
    ryy = cv2.Sobel(r, cv2.CV_32F, 0, 2, ksize=3)
    rxy = cv2.Sobel(r, cv2.CV_32F, 1, 1, ksize=3)
    # direction of the eigenvector of the Hessian with the most negative eigenvalue
    theta = 0.5 * np.arctan2(2.0 * rxy, rxx - ryy) + np.pi / 2.0
    bins = (np.round(theta / (np.pi / 4.0)).astype(int)) % 4  # 0: x, 1: diagonal, 2: y, 3: anti-diagonal
    p = np.pad(r, 1, mode="edge")
    c = p[1:-1, 1:-1]
    neighbours = {
        0: (p[1:-1, :-2], p[1:-1, 2:]),
        1: (p[:-2, :-2], p[2:, 2:]),
        2: (p[:-2, 1:-1], p[2:, 1:-1]),
        3: (p[:-2, 2:], p[2:, :-2]),
    }
    out = np.zeros(r.shape, bool)
    for b, (a1, a2) in neighbours.items():
        m = bins == b
        out[m] = (c[m] >= a1[m]) & (c[m] >= a2[m])
    return out


@dataclass(frozen=True)
class GrassColour:
    """A frame's grass colour: its dominant green ``hue`` (OpenCV units, 0..180) and the least saturation
    (0..255) of a grass pixel."""

    hue: int
    min_saturation: float


def grass_colour(hsv: np.ndarray) -> GrassColour | None:
    """The dominant green of an HSV frame (OpenCV, uint8): the peak hue of the greenish pixels and a saturation
    floor relative to theirs, so lighting, grass type and white balance do not matter; None with under 50
    greenish pixels."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    greenish = (h >= 25) & (h <= 95) & (s >= 40) & (v >= 30)
    if greenish.sum() < 50:
        return None
    hist = np.bincount(h[greenish].ravel(), minlength=181).astype(float)
    peak = int(np.argmax(np.convolve(hist, np.ones(5) / 5.0, mode="same")))
    s_ref = float(np.median(s[greenish & (np.abs(h.astype(int) - peak) <= 8)]))
    return GrassColour(peak, max(30.0, 0.35 * s_ref))


def grass_pixels(hsv: np.ndarray, colour: GrassColour | None) -> np.ndarray:
    """Bool mask of the pixels of an HSV image (OpenCV, uint8) that are grass of ``colour`` (hue within 12);
    without a colour, the generic green range."""
    h, s, v = hsv[..., 0].astype(np.int16), hsv[..., 1], hsv[..., 2]
    if colour is None:
        return (h >= 25) & (h <= 95) & (s >= 40) & (v >= 30)
    return (np.abs(h - colour.hue) <= 12) & (s >= colour.min_saturation) & (v >= 25)


@dataclass
class ClassicalSegmenter:
    """Grass and line masks from colour and local contrast (see the module docstring).

    ``min_grass`` is the share of the frame that must be grass for a field to be reported at all (close-ups of
    the crowd or of a bench have none); ``tophat_px`` the width in working pixels of the widest structure
    counted as a line; ``line_contrast`` how much brighter (0..255) a line pixel is than its surroundings.
    """

    width: int = WORK_WIDTH
    min_grass: float = 0.04
    tophat_px: int = 9
    line_contrast: float = 12.0
    max_line_saturation: int = 110
    min_component_px: int = 25
    thin: bool = True

    def segment(self, image: np.ndarray) -> FieldObservation:
        """Field and line masks of an RGB uint8 frame (H, W, 3) at native resolution."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB frame (H, W, 3), got shape {image.shape}")
        small, scale = resize_to_working(image, self.width)
        size = (small.shape[1], small.shape[0])
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        grass = grass_pixels(hsv, grass_colour(hsv))
        empty = np.zeros(grass.shape, bool)
        if grass.mean() < self.min_grass:
            return FieldObservation(size, scale, empty, empty.copy(), extras={"grass_share": float(grass.mean())})
        field = self._field_region(grass)
        # markings lie on grass: a line pixel has grass within a few pixels on its sides (stands, boards and
        # banners inside the field's convex hull do not)
        k = 2 * self.tophat_px + 1
        near_grass = cv2.dilate(grass.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool)
        grass_frac = cv2.blur(grass.astype(np.float32), (k, k))
        support = field & near_grass & (grass_frac >= 0.35)
        lines = self._lines(small, hsv, support)
        return FieldObservation(size, scale, field, lines, extras={"grass_share": float(grass.mean())})

    # ------------------------------------------------------------------------------------------- pieces
    @staticmethod
    def _field_region(grass: np.ndarray) -> np.ndarray:
        """Convex hull of the largest grass area, after closing the gaps that players and lines leave."""
        g: np.ndarray = grass.astype(np.uint8)
        g = cv2.morphologyEx(g, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        g = cv2.morphologyEx(g, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15)))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(g, connectivity=8)
        if n <= 1:
            return np.zeros(grass.shape, bool)
        areas = stats[1:, cv2.CC_STAT_AREA]
        big = 1 + int(np.argmax(areas))
        keep = labels == big
        # grass areas split by a line across the image (e.g. the halfway line under heavy closing) are part too
        for lab in np.flatnonzero(areas >= 0.2 * areas.max()) + 1:
            keep |= labels == lab
        pts = cv2.findNonZero(keep.astype(np.uint8))
        hull = cv2.convexHull(pts)
        out = np.zeros(grass.shape, np.uint8)
        cv2.fillConvexPoly(out, hull, 1)
        return out.astype(bool)

    def _lines(self, rgb: np.ndarray, hsv: np.ndarray, field: np.ndarray) -> np.ndarray:
        """White, thin, bright-on-grass pixels inside the field region, in elongated groups."""
        lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.tophat_px, self.tophat_px))
        tophat = cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, k).astype(np.float32)
        inner = cv2.erode(field.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        # white on grass: the excess over the grass is grey, blue and red rise as much as the luminance (a yellow,
        # orange or fluorescent shirt does not)
        tophat_b = cv2.morphologyEx(np.ascontiguousarray(rgb[..., 2]), cv2.MORPH_TOPHAT, k).astype(np.float32)
        tophat_r = cv2.morphologyEx(np.ascontiguousarray(rgb[..., 0]), cv2.MORPH_TOPHAT, k).astype(np.float32)
        cand = (
            (tophat >= self.line_contrast) & (tophat_b >= 0.6 * tophat) & (tophat_r >= 0.6 * tophat)
            & (hsv[..., 1] <= self.max_line_saturation) & inner
        )
        cand = cand.astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
        if n <= 1:
            return np.zeros(field.shape, bool)
        w = stats[1:, cv2.CC_STAT_WIDTH].astype(float)
        h = stats[1:, cv2.CC_STAT_HEIGHT].astype(float)
        area = stats[1:, cv2.CC_STAT_AREA].astype(float)
        extent = np.maximum(w, h)
        fill = area / np.maximum(w * h, 1.0)
        # lines: long for their area (thin), or large sparse curves (the centre circle); players: compact blobs
        keep = (area >= self.min_component_px) & ((extent >= 18) & ((fill < 0.35) | (extent >= 4.0 * np.minimum(w, h))))
        lut = np.zeros(n, bool)
        lut[1:] = keep
        lines = lut[labels]
        return lines & _ridge(tophat) if self.thin else lines

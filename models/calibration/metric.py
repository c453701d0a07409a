"""Camera calibration metrics of the World Cup 2014 protocol: IoU part and IoU entire.

Every homography here maps **pitch metres to image pixels** (SoccerNet pitch frame, z = 0 plane, see
:mod:`matchflow.models.geometry.camera`; OpenCV pixels of an image of ``image_size`` = (width, height)). The
``calibration`` table stores ``homography_inv`` in that direction; invert its ``homography`` column otherwise.

- **IoU part**: the part of the pitch seen in the image, as the ground-truth and as the estimated homography
  place it on the pitch (top view, metres): the image box projected onto the grass, in front of the camera
  only, cut to the pitch rectangle. Score: intersection over union of the two regions.
- **IoU entire**: the whole pitch rectangle drawn into the image by the estimate and brought back onto the
  pitch by the ground truth (pitch-to-pitch map ``inv(H_gt) @ H_est``); score: its intersection over union
  with the pitch rectangle. Parts of the estimated pitch that land above the ground-truth horizon (no grass
  point in front of the ground-truth camera images there) or behind the estimated camera are dropped, and the
  mapped region is cut to a square of :data:`ENTIRE_EXTENT` pitch lengths around the centre spot, so that an
  estimate reaching the horizon gives a huge but finite region (an IoU near 0) instead of a wrapped polygon.

All regions are convex polygons cut out by half-planes that are linear in homogeneous pitch coordinates, so
areas are exact: Sutherland-Hodgman clipping (:func:`matchflow.models.geometry.camera.clip_polygon`) and the shoelace
formula. Scores are floats in 0..1, never NaN; a missing estimate (None or any NaN) scores 0 on both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from matchflow.models.geometry.camera import clip_polygon, front_sign, view_constraints
from matchflow.models.geometry.pitch import PitchModel

__all__ = [
    "ENTIRE_EXTENT",
    "CalibrationIoU",
    "polygon_area",
    "iou_part",
    "iou_entire",
    "calibration_iou",
    "summarize",
]

ENTIRE_EXTENT = 10.0
"""Half-width of the square, in pitch lengths, that bounds the estimated pitch region of IoU entire."""

_DEFAULT_PITCH = PitchModel()


@dataclass(frozen=True)
class CalibrationIoU:
    """IoU part and IoU entire of one image, both in 0..1."""

    part: float
    entire: float


def polygon_area(polygon: np.ndarray) -> float:
    """Area (square units of the coordinates) of a simple polygon (N, 2) by the shoelace formula; 0 for N < 3."""
    poly = np.asarray(polygon, dtype=float)
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def _missing(h: np.ndarray | None) -> bool:
    if h is None:
        return True
    a = np.asarray(h, dtype=float)
    return a.size != 9 or not np.all(np.isfinite(a)) or not np.any(a)


def _oriented(h: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """The 3x3 pitch-to-image homography scaled to max |h| = 1 with w > 0 in front of the camera."""
    h = np.asarray(h, dtype=float).reshape(3, 3)
    return h * front_sign(h, image_size) / np.abs(h).max()


def _check_gt(h_gt: np.ndarray | None) -> None:
    if _missing(h_gt):
        raise ValueError("the ground-truth homography must be a finite, non-zero 3x3 matrix")


def _iou(area_a: float, area_b: float, inter: float) -> float:
    union = area_a + area_b - inter
    if not union > 0.0:
        return 0.0
    return float(np.clip(inter / union, 0.0, 1.0))


def iou_part(
    h_est: np.ndarray | None,
    h_gt: np.ndarray,
    image_size: tuple[int, int],
    pitch: PitchModel | None = None,
) -> float:
    """IoU part (0..1) of an estimated against a ground-truth pitch-to-image homography (3x3, pitch metres to
    pixels) for an image of ``image_size`` = (width, height) pixels: overlap, on the pitch (metres), of the
    pitch regions each says the image shows. 0 for a missing estimate, or when neither shows any pitch."""
    _check_gt(h_gt)
    if _missing(h_est):
        return 0.0
    assert h_est is not None  # _missing(None) is True
    pitch = pitch or _DEFAULT_PITCH
    cons_gt = view_constraints(_oriented(h_gt, image_size), image_size)
    cons_est = view_constraints(_oriented(h_est, image_size), image_size)
    corners = pitch.corners()
    area_gt = polygon_area(clip_polygon(corners, cons_gt))
    area_est = polygon_area(clip_polygon(corners, cons_est))
    inter = polygon_area(clip_polygon(corners, np.vstack([cons_gt, cons_est])))
    return _iou(area_gt, area_est, inter)


def _box_constraints(m: np.ndarray, half_x: float, half_y: float) -> np.ndarray:
    """Constraints ``c @ [p, 1] >= 0`` (4, 3) on pitch points p whose image r = m @ [p, 1] (w > 0) lies in
    |x| <= half_x, |y| <= half_y."""
    return np.stack([m[0] + half_x * m[2], half_x * m[2] - m[0], m[1] + half_y * m[2], half_y * m[2] - m[1]])


def _mapped_area(polygon: np.ndarray, m: np.ndarray) -> float:
    """Area of the image of a convex polygon (N, 2) through the projective map m (3x3, w > 0 on it)."""
    if len(polygon) < 3:
        return 0.0
    q = polygon @ m[:, :2].T + m[:, 2]
    return polygon_area(q[:, :2] / q[:, 2:3])


def iou_entire(
    h_est: np.ndarray | None,
    h_gt: np.ndarray,
    image_size: tuple[int, int],
    pitch: PitchModel | None = None,
) -> float:
    """IoU entire (0..1) of an estimated against a ground-truth pitch-to-image homography (3x3, pitch metres to
    pixels, image of ``image_size`` = (width, height)): the pitch rectangle mapped by ``inv(H_gt) @ H_est``
    (pitch metres to pitch metres) against the pitch rectangle. 0 for a missing estimate."""
    _check_gt(h_gt)
    if _missing(h_est):
        return 0.0
    assert h_est is not None  # _missing(None) is True
    pitch = pitch or _DEFAULT_PITCH
    h_gt_n = _oriented(h_gt, image_size)
    h_est_n = _oriented(h_est, image_size)
    try:
        m = np.linalg.solve(h_gt_n, h_est_n)  # pitch -> image (estimate) -> pitch (ground truth)
    except np.linalg.LinAlgError:
        return 0.0
    if not np.all(np.isfinite(m)):
        return 0.0
    m = m / np.abs(m).max()
    extent = ENTIRE_EXTENT * max(pitch.length, pitch.width)
    eps = 1e-12
    front = np.stack(
        [
            h_est_n[2] - np.array([0.0, 0.0, eps]),  # in front of the estimated camera
            m[2] - np.array([0.0, 0.0, eps]),  # imaged below the ground-truth horizon
        ]
    )
    corners = pitch.corners()
    region = clip_polygon(corners, np.vstack([front, _box_constraints(m, extent, extent)]))
    inter_poly = clip_polygon(region, _box_constraints(m, pitch.half_length, pitch.half_width))
    area_est = _mapped_area(region, m)
    inter = _mapped_area(inter_poly, m)
    return _iou(area_est, pitch.area, inter)


def calibration_iou(
    h_est: np.ndarray | None,
    h_gt: np.ndarray,
    image_size: tuple[int, int],
    pitch: PitchModel | None = None,
) -> CalibrationIoU:
    """IoU part and IoU entire of one image (see :func:`iou_part`, :func:`iou_entire`)."""
    return CalibrationIoU(iou_part(h_est, h_gt, image_size, pitch), iou_entire(h_est, h_gt, image_size, pitch))


def summarize(ious: Iterable[CalibrationIoU | tuple[float, float]]) -> dict[str, float | int | None]:
    """Mean and median of IoU part and IoU entire over images, and their count.

    Returns ``{"count", "iou_part_mean", "iou_part_median", "iou_entire_mean", "iou_entire_median"}``; the
    statistics are None when there is no image.
    """
    pairs = np.array([(i.part, i.entire) if isinstance(i, CalibrationIoU) else tuple(i) for i in ious], dtype=float)
    n = len(pairs)
    if n == 0:
        return {"count": 0, "iou_part_mean": None, "iou_part_median": None,
                "iou_entire_mean": None, "iou_entire_median": None}
    return {
        "count": int(n),
        "iou_part_mean": float(np.mean(pairs[:, 0])),
        "iou_part_median": float(np.median(pairs[:, 0])),
        "iou_entire_mean": float(np.mean(pairs[:, 1])),
        "iou_entire_median": float(np.median(pairs[:, 1])),
    }

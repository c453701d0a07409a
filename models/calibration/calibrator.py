"""Per-frame camera calibration of broadcast video: segment the field, retrieve the nearest views from a
dictionary, refine, score; and follow the camera from frame to frame while it does not cut.

:class:`Calibrator` holds the pieces (see :mod:`matchflow.models.calibration.base`) and the state of the
current shot. The defaults need no weights: :class:`~matchflow.models.calibration.segmentation.ClassicalSegmenter`,
:class:`ChamferRetriever` over :func:`~matchflow.models.calibration.dictionary.default_dictionary`, and
:class:`~matchflow.models.calibration.refine.LineFitRefiner`; a valid calibration then gets a last fit at the
frame's native resolution (:class:`~matchflow.models.calibration.native.NativeLineFit`).

Results are in native pixels: ``homography`` maps image pixels to pitch metres (the ``calibration`` table's
direction), ``homography_inv`` pitch metres to image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from matchflow.models.calibration.base import (
    FieldObservation,
    FieldSegmenter,
    HomographyRefiner,
    ViewRetriever,
    to_native,
    to_working,
)
from matchflow.models.calibration.dictionary import GRID, ViewDictionary, default_dictionary
from matchflow.models.calibration.native import NativeLineFit
from matchflow.models.calibration.refine import LineFitRefiner, ObservationIndex, plausibility
from matchflow.models.calibration.segmentation import ClassicalSegmenter
from matchflow.models.geometry.pitch import PitchModel

__all__ = ["CalibrationResult", "ChamferRetriever", "Calibrator"]


@dataclass
class CalibrationResult:
    """One frame's calibration. Homographies are None when the frame has no plausible calibration."""

    homography: np.ndarray | None  # 3x3, native image pixels -> pitch metres
    homography_inv: np.ndarray | None  # 3x3, pitch metres -> native image pixels
    score: float
    valid: bool
    source: str  # "tracked" (refined from the previous frame), "retrieved", or "none"
    details: dict = field(default_factory=dict)


@dataclass
class ChamferRetriever:
    """Nearest dictionary views by a chamfer cost on the markings (both ways) plus the pitch-area overlap.

    Cost of a view = mean clipped distance from its markings to the observed line pixels + mean clipped
    distance from the observed line pixels to its markings (both / ``clip`` px) + 1 - IoU of its pitch area
    with the observed grass region.
    """

    dictionary: ViewDictionary
    clip: float = 30.0
    max_line_points: int = 400

    def candidates(self, obs: FieldObservation, k: int, index: ObservationIndex | None = None) -> list[np.ndarray]:
        d = self.dictionary
        if tuple(obs.size) != tuple(d.size):
            raise ValueError(f"observation of size {obs.size} against a dictionary built for {d.size}")
        index = index or ObservationIndex(obs)
        gw, gh = GRID
        f = cv2.resize(obs.field.astype(np.uint8), (gw, gh), interpolation=cv2.INTER_AREA).ravel().astype(np.float32)
        inter = d.field.astype(np.float32) @ f
        union = d.field.sum(axis=1) + f.sum() - inter
        iou = inter / np.maximum(union, 1.0)
        cost = 1.0 - iou
        pts = index.line_points
        if len(pts):
            if len(pts) > self.max_line_points:
                pts = pts[:: int(np.ceil(len(pts) / self.max_line_points))]
            s = gw / obs.size[0]
            gx = np.clip((pts[:, 0] * s).astype(int), 0, gw - 1)
            gy = np.clip((pts[:, 1] * s).astype(int), 0, gh - 1)
            rev = np.minimum(d.line_distance[:, gy, gx].astype(np.float32), self.clip).mean(axis=1) / self.clip
            xy = d.points_xy
            seen = np.isfinite(xy[..., 0])
            xi = np.clip(np.where(seen, np.nan_to_num(xy[..., 0]), 0).astype(int), 0, obs.size[0] - 1)
            yi = np.clip(np.where(seen, np.nan_to_num(xy[..., 1]), 0).astype(int), 0, obs.size[1] - 1)
            dist = np.minimum(index.distance[yi, xi], self.clip)
            n = seen.sum(axis=1)
            fwd = np.where(n >= 20, (dist * seen).sum(axis=1) / np.maximum(n, 1) / self.clip, 1.0)
            cost = cost + fwd + rev
        else:
            cost = cost + 2.0
        order = np.argsort(cost)[: max(1, k)]
        return [d.homographies[i] for i in order]


@dataclass
class Calibrator:
    """Calibrates the frames of one video in order (see the module docstring).

    ``valid_score``: the least plausibility for a valid calibration. ``keep_score``: a homography followed
    from the previous frame is kept without a new retrieval when it scores at least this. ``candidates``: views
    retrieved and refined when the camera is not followed. ``native_fit``: the last fit of a valid calibration
    against the markings at the frame's native resolution (:mod:`~matchflow.models.calibration.native`); None
    keeps the working-resolution result.
    """

    segmenter: FieldSegmenter = field(default_factory=ClassicalSegmenter)
    retriever: ViewRetriever | None = None
    refiner: HomographyRefiner = field(default_factory=LineFitRefiner)
    pitch: PitchModel = field(default_factory=PitchModel)
    valid_score: float = 0.55
    keep_score: float = 0.7
    candidates: int = 4
    min_line_pixels: int = 60
    native_fit: NativeLineFit | None = field(default_factory=NativeLineFit)
    _previous: np.ndarray | None = field(default=None, init=False, repr=False)
    _previous_score: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        samples = getattr(self.refiner, "samples", None)
        if samples is None:
            from matchflow.models.calibration.dictionary import line_samples

            samples = line_samples(self.pitch, 0.5)
        self._samples: np.ndarray = samples

    def reset(self) -> None:
        """Forget the previous frame (a new video or a known cut)."""
        self._previous, self._previous_score = None, 0.0

    def _retriever(self, obs: FieldObservation) -> ViewRetriever:
        if self.retriever is None:
            self.retriever = ChamferRetriever(default_dictionary(tuple(obs.size)))
        return self.retriever

    def _refine(self, obs: FieldObservation, h: np.ndarray, index: ObservationIndex) -> np.ndarray:
        if isinstance(self.refiner, LineFitRefiner):
            return self.refiner.refine(obs, h, index)
        return self.refiner.refine(obs, h)

    def calibrate(self, image: np.ndarray) -> CalibrationResult:
        """Calibrate one RGB uint8 frame (H, W, 3) at native resolution, the next of the video."""
        obs = self.segmenter.segment(image)
        index = ObservationIndex(obs)
        n_lines = int(obs.lines.sum())
        if not obs.field.any() or n_lines < self.min_line_pixels:
            self.reset()
            return CalibrationResult(None, None, 0.0, False, "none", {"line_pixels": n_lines})
        best_h, best, source = None, {"score": 0.0}, "none"
        if self._previous is not None:
            h = self._refine(obs, self._previous, index)
            best = plausibility(index, h, self.pitch, self._samples)
            best_h, source = h, "tracked"
        if best_h is None or best["score"] < self.keep_score:
            retriever = self._retriever(obs)
            if isinstance(retriever, ChamferRetriever):
                cands = retriever.candidates(obs, self.candidates, index)
            else:
                cands = retriever.candidates(obs, self.candidates)
            for h0 in cands:
                h = self._refine(obs, h0, index)
                q = plausibility(index, h, self.pitch, self._samples)
                if q["score"] > best["score"]:
                    best_h, best, source = h, q, "retrieved"
        score = float(best["score"])
        valid = best_h is not None and score >= self.valid_score and best.get("visible", 0.0) > 0.005
        details = {k: round(float(v), 4) for k, v in best.items()} | {"line_pixels": n_lines}
        if not valid:
            self.reset()
            return CalibrationResult(None, None, score, False, source, details)
        assert best_h is not None  # valid implies a homography
        h_inv = to_native(best_h, obs.scale)  # pitch -> native image
        if self.native_fit is not None:
            fit = self.native_fit.refine(image, h_inv)
            details |= {"native_fit": int(fit.accepted), "native_inliers": fit.inliers_after}
            if fit.accepted:
                h_inv = fit.homography
                best_h = to_working(h_inv, obs.scale)
        self._previous, self._previous_score = best_h, score
        h = np.linalg.inv(h_inv)
        return CalibrationResult(h / h[2, 2], h_inv, score, True, source, details)

"""Refinement of a pitch-to-image homography against the observed markings, and its plausibility score.

Refinement is an iterative closest point fit of the camera: the pitch's markings, sampled every half metre and
projected by the current camera, are paired with the nearest observed line pixel, and the observed line pixels
with the nearest projected marking; the camera's 7 parameters (pan, tilt, roll, focal length, position) are
then fitted to those pairs by robust least squares. The pairing radius shrinks from coarse to fine over the
iterations, so a start a few metres off converges and outliers (players in white, logos) drop out.

The plausibility score (0..1) asks three questions of a homography: are the markings it predicts seen in the
frame, are the markings seen in the frame predicted, and does the pitch area it predicts cover the grass seen.
Frames with no grass or no markings (close-ups, crowd shots) score 0.

All pixels are working-resolution pixels of the :class:`FieldObservation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt, map_coordinates
from scipy.optimize import least_squares
from scipy.spatial import cKDTree

from matchflow.models.calibration.base import FieldObservation
from matchflow.models.calibration.dictionary import camera_from_params, camera_params, field_area_mask, line_samples
from matchflow.models.geometry.camera import apply_homography, camera_from_homography, front_sign
from matchflow.models.geometry.pitch import PitchModel

__all__ = ["ObservationIndex", "LineFitRefiner", "plausibility"]


@dataclass
class ObservationIndex:
    """Look-up structures of one observation, computed once per frame: the distance (working px) from each
    pixel to the nearest observed line pixel with that pixel's coordinates, and the observed line pixels."""

    obs: FieldObservation
    max_points: int = 2500
    distance: np.ndarray = field(init=False)
    nearest: np.ndarray = field(init=False)  # (2, h, w) row, col of the nearest line pixel
    line_points: np.ndarray = field(init=False)  # (M, 2) x, y of (a subsample of) the line pixels

    def __post_init__(self) -> None:
        lines = self.obs.lines
        if lines.any():
            self.distance, self.nearest = distance_transform_edt(~lines, return_indices=True)
        else:
            self.distance = np.full(lines.shape, np.inf)
            self.nearest = np.zeros((2,) + lines.shape, np.int64)
        ys, xs = np.nonzero(lines)
        pts = np.column_stack([xs, ys]).astype(float)
        if len(pts) > self.max_points:
            pts = pts[np.random.default_rng(0).choice(len(pts), self.max_points, replace=False)]
        self.line_points = pts


def _project(h: np.ndarray, size: tuple[int, int], pts: np.ndarray, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of pitch points and whether each is in front of the camera and inside the image (+ margin)."""
    xy, w = apply_homography(h, pts)
    ok = (w * front_sign(h, size) > 0) & np.all(np.isfinite(xy), axis=1)
    ok &= (xy[:, 0] >= -margin) & (xy[:, 0] <= size[0] - 1 + margin) & (xy[:, 1] >= -margin)
    ok &= xy[:, 1] <= size[1] - 1 + margin
    return xy, ok


def plausibility(index: ObservationIndex, h: np.ndarray, pitch: PitchModel, samples: np.ndarray,
                 tol: float = 3.0) -> dict[str, float]:
    """Agreement of a pitch-to-image homography with an observation: ``precision`` (share of the predicted
    markings on the seen grass that lie within ``tol`` px of an observed line pixel), ``recall`` (share of the
    observed line pixels within ``tol`` px of a predicted marking), ``field_iou`` (predicted pitch area with its
    margin of grass against the seen grass region) and ``score``, their geometric mean (0 without evidence)."""
    obs = index.obs
    size = obs.size
    out = {"precision": 0.0, "recall": 0.0, "field_iou": 0.0, "score": 0.0, "visible": 0.0}
    if not obs.field.any() or len(index.line_points) < 20 or not np.all(np.isfinite(h)):
        return out
    xy, ok = _project(h, size, samples)
    xi = np.clip(np.round(xy[ok]).astype(int), 0, [size[0] - 1, size[1] - 1]) if ok.any() else np.zeros((0, 2), int)
    on_grass = obs.field[xi[:, 1], xi[:, 0]] if len(xi) else np.zeros(0, bool)
    if on_grass.sum() < 10:
        return out
    d = index.distance[xi[on_grass, 1], xi[on_grass, 0]]
    precision = float(np.mean(d <= tol))
    tree = cKDTree(xy[ok])
    dr, _ = tree.query(index.line_points, k=1, distance_upper_bound=tol + 1.0)
    recall = float(np.mean(dr <= tol))
    pred_b = field_area_mask(pitch, h, size)
    inter = float(np.logical_and(pred_b, obs.field).sum())
    union = float(np.logical_or(pred_b, obs.field).sum())
    iou = inter / union if union else 0.0
    score = float(np.cbrt(precision * recall * iou))
    out.update(precision=precision, recall=recall, field_iou=iou, score=score,
               visible=pitch.visible_fraction(h, size))
    return out


@lru_cache(maxsize=4)
def _pitch_distance(pitch: PitchModel, res: float = 0.1, margin: float = 12.0) -> tuple[np.ndarray, float, float]:
    """Distance in metres from points of the pitch plane to the nearest marking, on a raster of ``res`` metres
    covering the pitch plus ``margin``; returns (raster, x0, y0) with (x0, y0) the pitch position of cell 0."""
    x0, y0 = -pitch.half_length - margin, -pitch.half_width - margin
    w = int(np.ceil((pitch.length + 2 * margin) / res)) + 1
    h = int(np.ceil((pitch.width + 2 * margin) / res)) + 1
    img = np.full((h, w), 255, np.uint8)
    for line in pitch.lines().values():
        q = np.round((np.asarray(line) - [x0, y0]) / res * 16).astype(np.int32)
        cv2.polylines(img, [q.reshape(-1, 1, 2)], False, 0, 1, cv2.LINE_8, 4)
    return cv2.distanceTransform(img, cv2.DIST_L2, 5) * res, x0, y0


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray, outside: float) -> np.ndarray:
    """Bilinear samples of ``img`` at float pixel positions; ``outside`` beyond its border."""
    return map_coordinates(img, [y, x], order=1, mode="constant", cval=outside)


@dataclass
class LineFitRefiner:
    """Iterative closest point fit of the camera to the observed markings (see the module docstring).

    ``radii`` are the pairing radii (working px) of the successive iterations; ``roll_sigma`` (radians) and
    ``position_sigma`` (metres) softly keep the roll near level and the position near the start, which
    matters only when the markings seen do not fix the camera on their own.
    """

    pitch: PitchModel = field(default_factory=PitchModel)
    radii: tuple[float, ...] = (40.0, 30.0, 30.0, 20.0, 20.0, 14.0, 10.0, 7.0, 5.0, 3.5, 2.5, 2.0)
    roll_sigma: float = np.radians(2.0)
    position_sigma: float = 15.0
    step_m: float = 0.5

    clip_px: float = 30.0
    clip_m: float = 5.0
    align_rounds: int = 3
    camera_fit: bool = True
    camera_radii: tuple[float, ...] = (6.0, 4.0, 3.0, 2.0)
    align_evals: int = 100

    def __post_init__(self) -> None:
        self.samples = line_samples(self.pitch, self.step_m)
        self.coarse_samples = line_samples(self.pitch, 1.5)

    def refine(self, obs: FieldObservation, h: np.ndarray, index: ObservationIndex | None = None) -> np.ndarray:
        """The refined pitch-to-working-image homography (``h`` itself when the fit is impossible).

        Each iteration pairs the markings with the observed line pixels within the current radius and fits a
        homography to the pairs by least squares; a fit that no pinhole camera explains is not taken.
        """
        index = index or ObservationIndex(obs)
        if len(index.line_points) < 20:
            return h
        size = obs.size
        grass = cv2.dilate(obs.field.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        cur = self.align(index, np.asarray(h, dtype=float), grass)
        if self.camera_fit:
            cam = camera_from_homography(cur, size)
            if cam is not None:
                p = camera_params(cam)
                p0 = p.copy()
                for radius in self.camera_radii:
                    src, dst = self._pairs(index, camera_from_params(p, size).homography(), grass, radius)
                    if len(src) < 12:
                        break
                    p = self._fit(p, p0, src, dst, size, radius)
                out = camera_from_params(p, size).homography()
                return out / out[2, 2]
        for radius in self.radii:
            src, dst = self._pairs(index, cur, grass, radius)
            if len(src) < 12:
                break
            new, _ = cv2.findHomography(src, dst, 0)
            if new is None or not np.all(np.isfinite(new)) or abs(new[2, 2]) < 1e-12:
                break
            new = new / new[2, 2]
            if camera_from_homography(new, size, refine=False) is None:
                break
            cur = new
        return cur / cur[2, 2]

    def align(self, index: ObservationIndex, h: np.ndarray, grass: np.ndarray) -> np.ndarray:
        """Coarse alignment with a wide basin: the camera's 7 parameters minimising, by robust least squares,
        the distance (clipped at ``clip_px``) from the projected markings to the observed line pixels plus the
        distance (clipped at ``clip_m``) from the back-projected line pixels to the markings on the pitch."""
        size = index.obs.size
        cam = camera_from_homography(h, size)
        if cam is None:
            return h
        dist_img = np.minimum(index.distance, self.clip_px).astype(np.float32)
        dist_pitch, x0, y0 = _pitch_distance(self.pitch)
        res = 0.1
        obs_pts = index.line_points
        if len(obs_pts) > 800:
            obs_pts = obs_pts[:: int(np.ceil(len(obs_pts) / 800))]
        obs_h = np.column_stack([obs_pts, np.ones(len(obs_pts))])
        p = camera_params(cam)
        for _ in range(self.align_rounds):
            hc = camera_from_params(p, size).homography()
            xy, ok = _project(hc, size, self.coarse_samples)
            xi = np.round(xy[ok]).astype(int)
            use = self.coarse_samples[np.flatnonzero(ok)[grass[xi[:, 1], xi[:, 0]]]]
            if len(use) < 12:
                return h
            pts3 = np.column_stack([use, np.zeros(len(use))])

            def residuals(q: np.ndarray) -> np.ndarray:
                c = camera_from_params(q, size)
                pxy, depth = c.project(pts3)
                fwd = _bilinear(dist_img, pxy[:, 0], pxy[:, 1], self.clip_px)
                fwd[depth <= 1e-3] = self.clip_px
                hi = np.linalg.inv(c.homography())
                w = obs_h @ hi.T
                with np.errstate(divide="ignore", invalid="ignore"):
                    bx = (w[:, 0] / w[:, 2] - x0) / res
                    by = (w[:, 1] / w[:, 2] - y0) / res
                bad = ~np.isfinite(bx) | ~np.isfinite(by)
                rev = _bilinear(dist_pitch, np.nan_to_num(bx), np.nan_to_num(by), self.clip_m)
                rev = np.minimum(rev, self.clip_m)
                rev[bad] = self.clip_m
                return np.concatenate([fwd / self.clip_px, rev / self.clip_m])

            sol = least_squares(residuals, p, loss="soft_l1", f_scale=0.3, x_scale="jac", max_nfev=self.align_evals,
                                diff_step=1e-4)
            if not np.all(np.isfinite(sol.x)):
                return h
            p = sol.x
        out = camera_from_params(p, size).homography()
        return out / out[2, 2]

    def _pairs(self, index: ObservationIndex, h: np.ndarray, grass: np.ndarray, radius: float):
        size = index.obs.size
        xy, ok = _project(h, size, self.samples)
        if ok.sum() < 6:
            return np.zeros((0, 2)), np.zeros((0, 2))
        xi = np.round(xy[ok]).astype(int)
        inside = grass[xi[:, 1], xi[:, 0]]
        idx = np.flatnonzero(ok)[inside]
        xi = xi[inside]
        d = index.distance[xi[:, 1], xi[:, 0]]
        keep = d <= radius
        ny = index.nearest[0][xi[keep, 1], xi[keep, 0]]
        nx = index.nearest[1][xi[keep, 1], xi[keep, 0]]
        src_f = self.samples[idx[keep]]
        dst_f = np.column_stack([nx, ny]).astype(float)
        # the other way: each observed line pixel to the nearest predicted marking
        vis = np.flatnonzero(ok)
        tree = cKDTree(xy[vis])
        dr, j = tree.query(index.line_points, k=1, distance_upper_bound=radius)
        good = np.isfinite(dr)
        src_r = self.samples[vis[j[good]]]
        dst_r = index.line_points[good]
        return np.vstack([src_f, src_r]), np.vstack([dst_f, dst_r])

    def _fit(self, p: np.ndarray, p0: np.ndarray, src: np.ndarray, dst: np.ndarray, size: tuple[int, int],
             radius: float) -> np.ndarray:
        pts3 = np.column_stack([src, np.zeros(len(src))])
        sig = np.array([self.roll_sigma, self.position_sigma, self.position_sigma, self.position_sigma])

        def residuals(q: np.ndarray) -> np.ndarray:
            xy, depth = camera_from_params(q, size).project(pts3)
            r = (xy - dst).ravel()
            r[np.repeat(depth <= 1e-3, 2)] = 1e3
            prior = (np.concatenate([[q[2]], q[4:7]]) - np.concatenate([[0.0], p0[4:7]])) / sig
            return np.concatenate([r, prior])

        sol = least_squares(residuals, p, loss="soft_l1", f_scale=max(1.0, radius / 3.0), x_scale="jac",
                            max_nfev=30)
        return sol.x if np.all(np.isfinite(sol.x)) else p

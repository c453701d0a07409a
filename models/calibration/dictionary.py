"""A dictionary of camera views for calibration, built as CCBV builds it: a Gaussian mixture fitted to the
camera parameters of a prior, its modes (with the number of modes chosen by BIC) and draws from it widened by
pan/tilt/zoom jitter give the views; each view is a pitch-to-image homography and a template of what the
camera sees (the pitch's markings and the pitch area).

The prior is the 209 World Cup 2014 broadcast cameras shipped in ``matchflow/data``; only the cameras of its
"dictionary" split build the dictionary, so the "heldout" cameras can evaluate it (see
:func:`matchflow.models.geometry.camera_prior.prior_split`).

Camera parameters are (pan, tilt, roll) in radians, log focal length in pixels at 1280 px wide, and the
position (x, y, z) in pitch metres; see :mod:`matchflow.models.geometry.camera`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from matchflow.models.calibration.base import WORK_WIDTH
from matchflow.models.geometry.camera import (
    PinholeCamera,
    apply_homography,
    camera_from_homography,
    front_sign,
    pan_tilt_roll_to_rotation,
)
from matchflow.models.geometry.camera_prior import load_camera_prior, prior_split
from matchflow.models.geometry.pitch import PitchModel

__all__ = [
    "camera_params",
    "camera_from_params",
    "fit_camera_mixture",
    "ViewDictionary",
    "build_dictionary",
    "default_dictionary",
    "field_area_mask",
    "line_samples",
    "recipe_checksum",
]

PRIOR_SIZE = (1280, 720)
GRID = (160, 90)  # template resolution (width, height) for the retrieval cost
FIELD_MARGIN_M = 3.0  # grass beyond the lines that a field mask includes


def camera_params(cam: PinholeCamera) -> np.ndarray:
    """The 7 parameters (pan, tilt, roll, log focal at 1280 px wide, x, y, z) of a camera."""
    pan, tilt, roll = cam.pan_tilt_roll
    f = cam.focal_px * PRIOR_SIZE[0] / cam.image_size[0]
    return np.array([pan, tilt, roll, np.log(f), *np.asarray(cam.position, dtype=float)])


def camera_from_params(p: np.ndarray, size: tuple[int, int]) -> PinholeCamera:
    """The camera of 7 parameters (see :func:`camera_params`) for images of ``size`` (width, height)."""
    f = float(np.exp(p[3])) * size[0] / PRIOR_SIZE[0]
    return PinholeCamera(f, pan_tilt_roll_to_rotation(p[0], p[1], p[2]), np.asarray(p[4:7], dtype=float),
                         (int(size[0]), int(size[1])))


def fit_camera_mixture(params: np.ndarray, max_components: int = 24, seed: int = 0):  # sklearn
    """A Gaussian mixture over camera parameters (N, 7), the number of modes chosen by BIC."""
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    x = np.asarray(params, dtype=float)
    best, best_bic = None, np.inf
    with threadpool_limits(1):  # 7x7 matrices: BLAS threads only cost
        for k in range(1, max(1, min(max_components, len(x) // 4)) + 1):
            gm = GaussianMixture(k, covariance_type="full", reg_covar=1e-4, random_state=seed, n_init=2).fit(x)
            bic = gm.bic(x)
            if bic < best_bic:
                best, best_bic = gm, bic
    return best


def line_samples(pitch: PitchModel, step: float = 1.0) -> np.ndarray:
    """Points (N, 2) in pitch metres every ``step`` metres or less along every marking of ``pitch``."""
    out = []
    for line in pitch.lines().values():
        line = np.asarray(line, dtype=float)
        for a, b in zip(line[:-1], line[1:]):
            n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
            t = np.arange(n)[:, None] / n
            out.append(a + t * (b - a))
        out.append(line[-1:])
    return np.concatenate(out)


@dataclass
class ViewDictionary:
    """Views for images of ``size`` (working resolution): pitch-to-image homographies (N, 3, 3), camera
    parameters (N, 7), and retrieval templates at :data:`GRID` resolution: the pitch area (field, with a
    margin of grass) and the distance in working pixels to the nearest marking (uint8, clipped)."""

    size: tuple[int, int]
    homographies: np.ndarray
    params: np.ndarray
    field: np.ndarray  # (N, gh * gw) bool
    line_distance: np.ndarray  # (N, gh, gw) uint8, working pixels
    points_xy: np.ndarray  # (N, P, 2) float32: line samples projected (working pixels), nan where unseen
    samples: np.ndarray  # (P, 2) pitch metres of those line samples

    def __len__(self) -> int:
        return len(self.homographies)

    def checksum(self) -> str:
        """sha256 of the dictionary's homographies: what a manifest records for it."""
        return hashlib.sha256(np.ascontiguousarray(self.homographies, dtype=np.float64).tobytes()).hexdigest()


def field_area_mask(pitch: PitchModel, h: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(height, width) bool mask of the pitch area with its :data:`FIELD_MARGIN_M` of grass, seen through a
    pitch-to-image homography ``h`` in an image of ``size`` = (width, height): what a field mask should cover."""
    big = PitchModel(pitch.length + 2 * FIELD_MARGIN_M, pitch.width + 2 * FIELD_MARGIN_M)
    poly = big.visible_polygon(h, size)
    mask = np.zeros((size[1], size[0]), np.uint8)
    if len(poly) >= 3:
        q, _ = apply_homography(h, poly)
        cv2.fillPoly(mask, [np.round(q * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def _template(h: np.ndarray, size: tuple[int, int], pitch: PitchModel, samples: np.ndarray):
    gw, gh = GRID
    s = gw / size[0]
    hg = np.diag([s, s, 1.0]) @ h
    field = field_area_mask(pitch, hg, (gw, gh))
    lines = pitch.line_mask(hg, (gw, gh), thickness_px=1)
    dist = np.minimum(cv2.distanceTransform((lines == 0).astype(np.uint8), cv2.DIST_L2, 3), 255.0 * s) / s
    xy, w = apply_homography(h, samples)
    ok = (w * front_sign(h, size) > 0) & (xy[:, 0] >= 0) & (xy[:, 0] < size[0]) & (xy[:, 1] >= 0) & (xy[:, 1] < size[1])
    xy[~ok] = np.nan
    return field.ravel(), np.clip(dist, 0, 255).astype(np.uint8), xy.astype(np.float32)


def build_dictionary(
    prior: dict[str, np.ndarray],
    size: tuple[int, int] = (WORK_WIDTH, WORK_WIDTH * 9 // 16),
    draws: int = 2500,
    seed: int = 0,
    pitch: PitchModel | None = None,
    widen: float = 1.5,
    min_visible: float = 0.02,
) -> ViewDictionary:
    """Fit the mixture to the prior's cameras (pitch-to-image homographies at 1280x720) and build the views:
    the mixture's means and ``draws`` draws from it with covariances scaled by ``widen`` and extra jitter of
    pan (+-4 degrees), tilt (+-2 degrees) and zoom (+-25%); views seeing less than ``min_visible`` of the pitch,
    or with the camera under the grass, are dropped."""
    pitch = pitch or PitchModel()
    cams = [camera_from_homography(h, PRIOR_SIZE) for h in prior.values()]
    params = np.array([camera_params(c) for c in cams if c is not None])
    gm = fit_camera_mixture(params, seed=seed)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(draws, gm.weights_)
    drawn = [params, gm.means_]
    for k, n in enumerate(counts):
        if n:
            drawn.append(rng.multivariate_normal(gm.means_[k], gm.covariances_[k] * widen, size=n))
    allp = np.concatenate(drawn)
    jitter = rng.normal(size=(len(allp), 3)) * np.array([np.radians(4.0), np.radians(2.0), 0.25])
    allp[len(params) + len(gm.means_):, [0, 1, 3]] += jitter[len(params) + len(gm.means_):]
    samples = line_samples(pitch, 1.0)
    hs, ps, fields, dists, pts = [], [], [], [], []
    for p in allp:
        if p[6] >= -3.0 or not np.all(np.isfinite(p)):
            continue
        cam = camera_from_params(p, size)
        h = cam.homography()
        h = h / h[2, 2]
        if pitch.visible_fraction(h, size) < min_visible:
            continue
        f, d, xy = _template(h, size, pitch, samples)
        if not f.any():
            continue
        hs.append(h)
        ps.append(p)
        fields.append(f)
        dists.append(d)
        pts.append(xy)
    return ViewDictionary(size, np.array(hs), np.array(ps), np.array(fields), np.array(dists), np.array(pts), samples)


DRAWS, SEED = 2500, 0


def recipe_checksum(draws: int = DRAWS, seed: int = SEED) -> str:
    """sha256 of what determines the default dictionary: the prior file, this module's source, the split and
    the parameters (cheap: the dictionary itself is built once per worker process)."""
    from importlib import resources

    digest = hashlib.sha256()
    digest.update(resources.files("matchflow.data").joinpath("wc14_camera_prior.json").read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(f"split=dictionary;draws={draws};seed={seed}".encode())
    return digest.hexdigest()


@lru_cache(maxsize=2)
def default_dictionary(size: tuple[int, int] = (WORK_WIDTH, WORK_WIDTH * 9 // 16), draws: int = DRAWS,
                       seed: int = SEED) -> ViewDictionary:
    """The dictionary of the shipped prior's "dictionary" split (built once per process, deterministic)."""
    prior = {k: v for k, v in load_camera_prior().items() if prior_split(k) == "dictionary"}
    return build_dictionary(prior, size, draws, seed)

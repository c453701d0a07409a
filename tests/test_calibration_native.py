"""The native-resolution camera fit: convergence from a start tens of pixels off, step edges not taken for
markings, no change without evidence, and what it adds to the calibrator."""

from __future__ import annotations

import numpy as np
import pytest

from matchflow.models.calibration.calibrator import Calibrator
from matchflow.models.calibration.dictionary import camera_from_params, camera_params
from matchflow.models.calibration.native import NativeLineFit, marking_samples
from matchflow.models.geometry.camera import apply_homography, camera_from_homography
from tests.test_calibration import PITCH, SIZE, heldout_cameras, render_lines


def _with_boards(image: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Bright advertising boards (a step edge, not a marking) from 3 m beyond the touchlines and goal lines."""
    w, hgt = SIZE
    ys, xs = np.mgrid[0:hgt, 0:w]
    q = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1) @ np.linalg.inv(h).T
    px, py = q[:, 0] / q[:, 2], q[:, 1] / q[:, 2]
    board = (np.abs(py) > PITCH.half_width + 3) | (np.abs(px) > PITCH.half_length + 3)
    out = image.reshape(-1, 3).copy()
    out[board & (q[:, 2] * np.sign(q[:, 2].mean()) > 0)] = (225, 225, 215)
    return out.reshape(image.shape)


def _pinhole(h: np.ndarray) -> np.ndarray:
    """The pinhole camera nearest to a prior homography (the prior's hand-annotated homographies are up to
    12 px away from any camera with square pixels and a centred principal point; the renderer uses cameras)."""
    return camera_from_params(camera_params(camera_from_homography(h, SIZE)), SIZE).homography()


def _visible_grid(h: np.ndarray) -> np.ndarray:
    grid = np.stack(np.meshgrid(np.linspace(-52, 52, 27), np.linspace(-34, 34, 18)), -1).reshape(-1, 2)
    xy, w = apply_homography(h, grid)
    inside = (w > 0) & (xy[:, 0] >= 0) & (xy[:, 0] < SIZE[0]) & (xy[:, 1] >= 0) & (xy[:, 1] < SIZE[1])
    return grid[inside]


def _px_error(a: np.ndarray, b: np.ndarray, pts: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(apply_homography(a, pts)[0] - apply_homography(b, pts)[0], axis=1)))


def test_samples_follow_every_marking_with_its_direction():
    pts, dirs = marking_samples(PITCH, 0.25)
    assert pts.shape == dirs.shape and len(pts) > 2000
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    # the halfway line (x = 0; the centre circle crosses it at |y| = 9.15 m) is sampled along y
    on_halfway = (np.abs(pts[:, 0]) < 1e-9) & (np.abs(pts[:, 1]) > 9.5)
    assert on_halfway.sum() >= (PITCH.width - 19) / 0.25 - 2 and np.allclose(np.abs(dirs[on_halfway, 1]), 1.0)


@pytest.mark.parametrize("camera", [0, 2, 5])
def test_fit_converges_from_a_start_tens_of_pixels_off(camera):
    h = _pinhole(heldout_cameras()[camera])
    image = _with_boards(render_lines(h, seed=camera), h)
    p = camera_params(camera_from_homography(h, SIZE))
    start = camera_from_params(p + np.array([0.004, 0.006, 0.002, 0.03, 0.8, -0.6, 0.4]), SIZE).homography()
    pts = _visible_grid(h)
    before = _px_error(start, h, pts)
    r = NativeLineFit().refine(image, start)
    after = _px_error(r.homography, h, pts)
    assert before > 8.0  # native pixels
    assert r.accepted and r.inliers_after > r.inliers_before
    assert after < 0.3, (before, after)


def test_without_markings_the_start_is_kept():
    h = heldout_cameras()[0]
    grass = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    grass[:] = (55, 135, 50)
    r = NativeLineFit().refine(grass, h)
    assert not r.accepted and r.homography is h and r.found == 0


def test_the_calibrator_lands_closer_with_the_native_fit():
    errors = {}
    for name, fit in (("working", None), ("native", NativeLineFit())):
        cal = Calibrator(native_fit=fit)
        errs = []
        for i, h in enumerate(map(_pinhole, heldout_cameras()[:3])):
            cal.reset()
            r = cal.calibrate(render_lines(h, seed=i))
            assert r.valid
            errs.append(_px_error(r.homography_inv, h, _visible_grid(h)))
            if fit is not None:
                assert r.details["native_fit"] == 1
        errors[name] = errs
    assert max(errors["native"]) < 0.5, errors
    assert np.mean(errors["native"]) < 0.5 * np.mean(errors["working"]), errors


def test_a_homography_of_either_sign_gives_the_same_fit():
    # a homography is defined up to scale, sign included: -h is the same camera
    h = _pinhole(heldout_cameras()[3])
    image = render_lines(h, seed=3)
    p = camera_params(camera_from_homography(h, SIZE))
    start = camera_from_params(p + np.array([0.002, 0.003, 0.0, 0.01, 0.3, -0.2, 0.1]), SIZE).homography()
    pos, neg = NativeLineFit().refine(image, start), NativeLineFit().refine(image, -start)
    assert pos.accepted and neg.accepted and pos.inliers_after == neg.inliers_after
    assert _px_error(neg.homography, h, _visible_grid(h)) < 0.3

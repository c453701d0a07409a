"""Camera calibration: segmentation, dictionary, refinement, the calibrator, and the stage on real decoded video."""

from __future__ import annotations

import numpy as np
import pytest

from matchflow.models.calibration.base import to_working
from matchflow.models.calibration.calibrator import Calibrator
from matchflow.models.calibration.dictionary import FIELD_MARGIN_M, default_dictionary, recipe_checksum
from matchflow.models.calibration.metric import calibration_iou
from matchflow.models.calibration.refine import LineFitRefiner, ObservationIndex, plausibility
from matchflow.models.calibration.segmentation import ClassicalSegmenter
from matchflow.models.geometry.camera import apply_homography
from matchflow.models.geometry.camera_prior import load_camera_prior, prior_split
from matchflow.models.geometry.pitch import PitchModel

SIZE = (1280, 720)
PITCH = PitchModel()


def render_lines(h_pitch_to_image: np.ndarray, size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """An RGB frame: striped grass over the pitch and its run-off, white markings, noisy stands elsewhere."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = rng.integers(40, 200, size=(h, w, 3), dtype=np.uint8)  # the crowd
    hi = np.linalg.inv(h_pitch_to_image)
    ys, xs = np.mgrid[0:h, 0:w]
    q = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)], 1) @ hi.T
    px, py = q[:, 0] / q[:, 2], q[:, 1] / q[:, 2]
    from matchflow.models.geometry.camera import front_sign

    ahead = (q[:, 2] * front_sign(h_pitch_to_image, size)) > 0
    grass = ahead & (np.abs(px) < PITCH.half_length + 4) & (np.abs(py) < PITCH.half_width + 4)
    stripe = (np.floor((px + 60) / 5.25).astype(int) % 2 == 0)
    colour = np.where(stripe[:, None], [[52, 128, 48]], [[62, 142, 56]])
    flat = img.reshape(-1, 3)
    flat[grass] = colour[grass]
    lines = PITCH.line_mask(h_pitch_to_image, size, thickness_px=3, antialias=True).reshape(-1) / 255.0
    flat[:] = (flat * (1 - lines[:, None]) + 235 * lines[:, None]).astype(np.uint8)
    return flat.reshape(h, w, 3)


def heldout_cameras() -> list[np.ndarray]:
    prior = load_camera_prior()
    return [prior[k] for k in sorted(prior) if prior_split(k) == "heldout"]


@pytest.fixture(scope="module")
def dictionary():
    return default_dictionary((640, 360))


def test_segmenter_finds_the_markings_and_nothing_in_a_crowd():
    h = heldout_cameras()[0]
    image = render_lines(h)
    obs = ClassicalSegmenter().segment(image)
    assert obs.size == (640, 360) and obs.scale == pytest.approx(0.5)
    assert obs.field.mean() > 0.2 and obs.lines.sum() > 300
    truth = PITCH.line_mask(to_working(h, obs.scale), obs.size, thickness_px=5) > 0
    assert truth[obs.lines].mean() > 0.95  # found line pixels lie on true markings
    crowd = np.random.default_rng(1).integers(0, 255, size=(720, 1280, 3), dtype=np.uint8)
    empty = ClassicalSegmenter().segment(crowd)
    assert not empty.field.any() and not empty.lines.any()
    with pytest.raises(ValueError, match="RGB"):
        ClassicalSegmenter().segment(np.zeros((10, 10), np.uint8))


def test_dictionary_is_built_from_the_dictionary_split_and_is_deterministic(dictionary):
    assert len(dictionary) > 1000
    assert dictionary.field.any(axis=1).all()
    assert recipe_checksum() == recipe_checksum() and len(recipe_checksum()) == 64
    again = default_dictionary.__wrapped__((640, 360))
    assert again.checksum() == dictionary.checksum()
    # every view sees part of the pitch with its camera above the grass
    assert (dictionary.params[:, 6] < 0).all()


def test_refiner_converges_from_a_perturbed_start():
    h = heldout_cameras()[1]
    image = render_lines(h)
    obs = ClassicalSegmenter().segment(image)
    hw = to_working(h, obs.scale)
    shift = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.5], [0.0, 0.0, 1.0]])  # 2 m, -1.5 m on the pitch
    start = hw @ np.linalg.inv(shift)
    refined = LineFitRefiner().refine(obs, start)
    grid = np.stack(np.meshgrid(np.linspace(-40, 40, 9), np.linspace(-25, 25, 6)), -1).reshape(-1, 2)
    a, _ = apply_homography(refined, grid)
    b, _ = apply_homography(hw, grid)
    c, _ = apply_homography(start, grid)
    err_end = np.median(np.linalg.norm(a - b, axis=1))
    err_start = np.median(np.linalg.norm(c - b, axis=1))
    assert err_end < 0.1 * err_start and err_end < 2.0  # working pixels
    index = ObservationIndex(obs)
    refiner = LineFitRefiner()
    assert plausibility(index, refined, PITCH, refiner.samples)["score"] > 0.8
    assert plausibility(index, start, PITCH, refiner.samples)["score"] < 0.6


def test_calibrator_on_heldout_cameras_and_close_ups(dictionary):
    cal = Calibrator()
    parts, entires = [], []
    for i, h in enumerate(heldout_cameras()[:4]):
        cal.reset()
        r = cal.calibrate(render_lines(h, seed=i))
        assert r.valid, r.details
        assert r.homography.shape == (3, 3) and np.allclose(r.homography @ r.homography_inv / (r.homography @ r.homography_inv)[2, 2], np.eye(3), atol=1e-6)
        iou = calibration_iou(r.homography_inv, h, SIZE)
        parts.append(iou.part)
        entires.append(iou.entire)
    assert np.mean(parts) > 0.9 and np.mean(entires) > 0.8, (parts, entires)
    # the next frame, panned a little, is followed from the previous one
    h0 = heldout_cameras()[0]
    cal.reset()
    cal.calibrate(render_lines(h0))
    pan = np.array([[1.0, 0.0, 12.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    r = cal.calibrate(render_lines(pan @ h0))
    assert r.valid and r.source == "tracked"
    # grass without markings (a close-up) and a crowd: invalid, no homography
    grass = np.zeros((720, 1280, 3), np.uint8)
    grass[:] = (55, 135, 50)
    for frame in (grass, np.random.default_rng(3).integers(0, 255, size=(720, 1280, 3), dtype=np.uint8)):
        r = cal.calibrate(frame)
        assert not r.valid and r.homography is None and r.score == 0.0


def test_field_margin_is_what_the_dictionary_assumes():
    assert 0 < FIELD_MARGIN_M < 10

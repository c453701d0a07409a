import numpy as np
import pytest

from matchflow.models.calibration.metric import (
    CalibrationIoU,
    calibration_iou,
    iou_entire,
    iou_part,
    polygon_area,
    summarize,
)
from matchflow.models.geometry.camera import PinholeCamera, look_at_rotation, pan_tilt_roll_to_rotation
from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.models.geometry.pitch import PitchModel

SIZE = (1280, 720)


def _translation(dx: float, dy: float = 0.0) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _top_down(focal: float = 1000.0, height: float = 30.0) -> np.ndarray:
    """A camera looking straight down at the centre spot: it sees an axis-aligned rectangle of
    1280 * 30 / 1000 = 38.4 m by 720 * 30 / 1000 = 21.6 m, inside the pitch."""
    cam = PinholeCamera(focal, pan_tilt_roll_to_rotation(0.0, 0.0, 0.0), np.array([0.0, 0.0, -height]), SIZE)
    return cam.homography()


def _prior(name: str = "1.jpg") -> np.ndarray:
    return load_camera_prior()[name]


def test_polygon_area():
    assert polygon_area(PitchModel().corners()) == pytest.approx(105 * 68)
    assert polygon_area(np.zeros((2, 2))) == 0.0


@pytest.mark.parametrize("h", [_top_down(), _prior("1.jpg"), _prior("100.jpg")])
def test_identical_homographies_score_one(h):
    for scale in (1.0, -3.5):  # a homography's scale and sign are free
        iou = calibration_iou(h * scale, h, SIZE)
        assert abs(iou.part - 1.0) < 1e-9 and abs(iou.entire - 1.0) < 1e-9


@pytest.mark.parametrize("h", [_top_down(), _prior("1.jpg"), _prior("50.jpg")])
@pytest.mark.parametrize("dx", [0.5, 5.0, 20.0])
def test_pitch_translation_gives_analytic_iou_entire(h, dx):
    # the estimate images pitch point p where the ground truth images p + (dx, 0): the pitch-to-pitch map is a
    # translation and the two rectangles overlap on (105 - dx) x 68 m
    h_est = h @ _translation(dx)
    assert iou_entire(h_est, h, SIZE) == pytest.approx((105 - dx) / (105 + dx), abs=1e-6)
    assert iou_entire(h @ _translation(-dx), h, SIZE) == pytest.approx((105 - dx) / (105 + dx), abs=1e-6)


def test_iou_part_of_a_top_down_camera_is_hand_computed():
    h = _top_down()
    width_m = 1280 * 30 / 1000  # 38.4 m seen along x, 21.6 m along y, centred on the centre spot
    assert PitchModel().visible_fraction(h, SIZE) == pytest.approx(38.4 * 21.6 / (105 * 68))
    for dx in (1.0, 5.0, 12.0):
        # the estimated view rectangle is the true one moved by -dx along x: same size, overlap (38.4 - dx) m
        assert iou_part(h @ _translation(dx), h, SIZE) == pytest.approx((width_m - dx) / (width_m + dx), abs=1e-9)
    dy = 4.0
    assert iou_part(h @ _translation(0.0, dy), h, SIZE) == pytest.approx((21.6 - dy) / (21.6 + dy), abs=1e-9)


def test_missing_estimate_scores_zero():
    h = _prior()
    for est in (None, np.full((3, 3), np.nan), np.zeros((3, 3))):
        iou = calibration_iou(est, h, SIZE)
        assert iou == CalibrationIoU(0.0, 0.0)
    with pytest.raises(ValueError, match="ground-truth"):
        calibration_iou(h, None, SIZE)


def test_real_camera_iou_decreases_with_the_perturbation():
    rng = np.random.default_rng(0)
    for name in ("1.jpg", "20.jpg", "150.jpg"):
        h = _prior(name)
        direction = rng.normal(size=(3, 3))
        parts, entires = [], []
        for eps in (0.002, 0.01, 0.03):
            iou = calibration_iou(h * (1.0 + eps * direction), h, SIZE)
            assert 0.0 < iou.part < 1.0 and 0.0 < iou.entire < 1.0
            parts.append(iou.part)
            entires.append(iou.entire)
        assert parts[0] > parts[1] > parts[2], (name, parts)
        assert entires[0] > entires[1] > entires[2], (name, entires)


def test_estimate_reaching_the_horizon_is_finite_and_low():
    # the true camera looks at the centre spot from the main stand; the estimate looks down at the near side so
    # much that the far side of the pitch is drawn above the true horizon: no wrapped polygon, a score near 0
    pos = np.array([0.0, 70.0, -20.0])
    gt = PinholeCamera(1500.0, look_at_rotation(pos, np.array([0.0, 0.0, 0.0])), pos, SIZE)
    scores = []
    for target_y in (5.0, 20.0, 40.0):
        est = PinholeCamera(1500.0, look_at_rotation(pos, np.array([0.0, target_y, 0.0])), pos, SIZE)
        iou = calibration_iou(est.homography(), gt.homography(), SIZE)
        assert np.isfinite(iou.part) and np.isfinite(iou.entire)
        assert 0.0 <= iou.part <= 1.0 and 0.0 <= iou.entire <= 1.0
        scores.append(iou.entire)
    assert scores[0] > scores[1] > scores[2]
    assert scores[2] < 0.01


def test_summarize():
    s = summarize([CalibrationIoU(1.0, 0.5), (0.0, 0.25), CalibrationIoU(0.5, 1.0)])
    assert s == {"count": 3, "iou_part_mean": 0.5, "iou_part_median": 0.5,
                 "iou_entire_mean": pytest.approx(1.75 / 3), "iou_entire_median": 0.5}
    assert summarize([])["count"] == 0 and summarize([])["iou_part_mean"] is None

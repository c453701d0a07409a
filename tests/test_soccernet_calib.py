import io
import json

import numpy as np
import pytest

from matchflow.models.geometry.camera import PinholeCamera, look_at_rotation
from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.storage.soccernet import (
    PLACEHOLDER_HOMOGRAPHY,
    CcbvCalibration,
    read_camera_json,
    read_ccbv,
    rescale,
    write_camera_json,
    write_ccbv,
)


def _norm(h):
    h = np.asarray(h, dtype=float)
    return h / h[..., 2:3, 2:3]


def _prior(n=4):
    prior = load_camera_prior()
    return np.stack([prior[k] for k in sorted(prior)[:n]])  # pitch -> 1280x720 image


def test_ccbv_round_trip(tmp_path):
    p2i = _prior(4)
    i2p = np.linalg.inv(p2i)
    conf = np.array([0.9, 0.5, 0.99, 0.2])
    path = tmp_path / "1_field_calib_ccbv.json"
    write_ccbv(path, i2p.reshape(4, 9), (1280, 720), conf)
    raw = json.loads(path.read_text())
    assert raw["size"] == [3, 720, 1280] and len(raw["predictions"]) == 4
    calib = read_ccbv(path)
    assert calib.size == (1280, 720) and len(calib) == 4
    assert np.max(np.abs(_norm(calib.homographies) - _norm(p2i))) < 1e-9
    np.testing.assert_array_equal(calib.confidence, conf)
    assert np.max(np.abs(calib.image_to_pitch() - _norm(i2p))) < 1e-9
    # open files, text or binary
    buf = io.StringIO()
    write_ccbv(buf, i2p, (1280, 720), conf)
    again = read_ccbv(io.BytesIO(buf.getvalue().encode()))
    assert np.max(np.abs(again.homographies - calib.homographies)) == 0.0


def test_invalid_frames_are_written_loadable_with_zero_confidence(tmp_path):
    i2p = np.linalg.inv(_prior(3))
    i2p[1] = np.nan
    path = tmp_path / "2_field_calib_ccbv.json"
    write_ccbv(path, i2p, (1280, 720), np.array([0.8, 0.7, 0.9]), valid=np.array([True, True, False]))
    calib = read_ccbv(str(path))
    np.testing.assert_array_equal(calib.confidence, [0.8, 0.0, 0.0])
    for k in (1, 2):
        np.testing.assert_array_equal(calib.homographies[k], PLACEHOLDER_HOMOGRAPHY)
    # the placeholder shows no pitch point inside the image
    from matchflow.models.geometry.pitch import PitchModel

    assert PitchModel().visible_fraction(PLACEHOLDER_HOMOGRAPHY, (1280, 720)) == 0.0
    with pytest.raises(ValueError, match="confidences"):
        write_ccbv(path, i2p, (1280, 720), np.ones(2))


def test_prior_homography_survives_rescaling():
    h = _prior(5)
    small = rescale(h, (1280, 720), (398, 224))
    back = rescale(small, (398, 224), (1280, 720))
    assert np.max(np.abs(_norm(back) - _norm(h))) < 1e-9
    # a pitch point lands at the same relative image position
    p = np.array([10.0, -5.0, 1.0])
    q_big = h[0] @ p
    q_small = small[0] @ p
    np.testing.assert_allclose(q_small[:2] / q_small[2], q_big[:2] / q_big[2] * [398 / 1280, 224 / 720])
    calib = CcbvCalibration((1280, 720), h, np.ones(5)).rescaled((398, 224))
    assert calib.size == (398, 224) and np.allclose(calib.homographies, small)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"predictions": []}', "missing key 'size'"),
        ('{"size": [3, 224, 398]}', "missing key 'predictions'"),
        ('{"size": [224, 398], "predictions": []}', "has 2 values, expected 3"),
        ('{"size": [3, 224, 398], "predictions": [[{"homography": [1, 0, 0, 0, 1, 0, 0, 0], "confidence": 1}]]}',
         "has 8 values, expected 9"),
        ('{"size": [3, 224, 398], "predictions": [[{"homography": [1, 0, 0, 0, 1, 0, 0, 0, NaN], "confidence": 1}]]}',
         "must be finite"),
        ('{"size": [3, 224, 398], "predictions": [[{"homography": [1, 0, 0, 0, 1, 0, 0, 0, 1]}]]}',
         "no 'confidence'"),
        ('{"size": [3, 224, 398], "predictions": [[]]}', "non-empty list"),
        ('{"size": [3, 224, 398], "predictions": [[{"homography": "x", "confidence": 1}]]}', "list of 9 numbers"),
    ],
)
def test_malformed_ccbv_files_name_the_file(tmp_path, text, problem):
    path = tmp_path / "bad_field_calib_ccbv.json"
    path.write_text(text)
    with pytest.raises(ValueError) as exc:
        read_ccbv(path)
    assert "bad_field_calib_ccbv.json" in str(exc.value) and problem in str(exc.value)


def test_empty_ccbv_file_is_valid(tmp_path):
    path = tmp_path / "1_field_calib_ccbv.json"
    path.write_text('{"size": [3, 224, 398], "predictions": []}')
    calib = read_ccbv(path)
    assert calib.size == (398, 224) and calib.homographies.shape == (0, 3, 3)


def test_camera_json_round_trip_and_errors(tmp_path):
    pos = np.array([3.0, 60.0, -18.0])
    cam = PinholeCamera(1700.0, look_at_rotation(pos, np.array([-10.0, 2.0, 0.0]), 0.01), pos, (1280, 720))
    path = tmp_path / "camera.json"
    write_camera_json(path, cam)
    back = read_camera_json(path)
    assert back.image_size == (1280, 720) and back.focal_px == pytest.approx(1700.0)
    np.testing.assert_allclose(back.homography(), cam.homography(), atol=1e-9)
    good = json.loads(path.read_text())
    for mutate, problem in (
        (lambda d: d.pop("tilt_degrees"), "missing key 'tilt_degrees'"),
        (lambda d: d.update(position_meters=[1.0, 2.0]), "has 2 values, expected 3"),
        (lambda d: d.update(x_focal_length=-5.0), "focal lengths must be positive"),
        (lambda d: d.update(pan_degrees="a"), "must be a number"),
    ):
        d = json.loads(json.dumps(good))
        mutate(d)
        bad = tmp_path / "cam_bad.json"
        bad.write_text(json.dumps(d))
        with pytest.raises(ValueError) as exc:
            read_camera_json(bad)
        assert "cam_bad.json" in str(exc.value) and problem in str(exc.value)
    bad.write_text("nope")
    with pytest.raises(ValueError, match="cam_bad.json: not valid JSON"):
        read_camera_json(bad)

"""Pinhole camera <-> homography: conventions, exact round trips, and the World Cup 2014 camera prior."""

import numpy as np
import pytest

from matchflow.models.geometry.camera import (
    PinholeCamera,
    camera_from_homography,
    camera_from_soccernet_dict,
    camera_to_soccernet_dict,
    look_at_rotation,
    pan_tilt_roll_to_rotation,
    reprojection_errors,
    rotation_to_pan_tilt_roll,
)
from matchflow.models.geometry.camera_prior import load_camera_prior


def random_broadcast_camera(rng: np.random.Generator, size=(1280, 720)) -> PinholeCamera:
    position = np.array([rng.uniform(-10, 10), rng.uniform(45, 100), rng.uniform(-30, -8)])
    aim = np.array([rng.uniform(-45, 45), rng.uniform(-25, 20), 0.0])
    rotation = look_at_rotation(position, aim, np.radians(rng.uniform(-2, 2)))
    return PinholeCamera(float(rng.uniform(900, 6000)), rotation, position, size)


def test_soccernet_angle_convention():
    # pan 0, tilt 90 degrees: level, looking across the pitch from the main camera (along -y), x to the right
    r = pan_tilt_roll_to_rotation(0.0, np.pi / 2, 0.0)
    assert r[2] == pytest.approx([0.0, -1.0, 0.0], abs=1e-12)  # optical axis
    assert r[0] == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)  # image x
    assert r[1] == pytest.approx([0.0, 0.0, 1.0], abs=1e-12)  # image y: down is +z
    # positive pan turns toward +x
    assert pan_tilt_roll_to_rotation(np.radians(30), np.pi / 2, 0.0)[2, 0] > 0


def test_angles_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(200):
        pan, tilt, roll = rng.uniform(-np.pi, np.pi), rng.uniform(0.05, np.pi - 0.05), rng.uniform(-0.5, 0.5)
        r = pan_tilt_roll_to_rotation(pan, tilt, roll)
        assert np.allclose(r @ r.T, np.eye(3)) and np.linalg.det(r) == pytest.approx(1.0)
        assert rotation_to_pan_tilt_roll(r) == pytest.approx((pan, tilt, roll), abs=1e-9)


def test_projection_with_height():
    cam = random_broadcast_camera(np.random.default_rng(1))
    feet = np.array([3.0, -5.0, 0.0])
    head = np.array([3.0, -5.0, -1.8])
    (xy_feet, xy_head), depth = cam.project(np.stack([feet, head]))
    assert np.all(depth > 0)
    assert xy_head[1] < xy_feet[1]  # the head is higher in the image
    q = cam.projection_matrix() @ np.append(head, 1.0)
    assert xy_head == pytest.approx(q[:2] / q[2])
    # on the grass the homography and the projection matrix agree
    q = cam.homography() @ np.array([3.0, -5.0, 1.0])
    assert xy_feet == pytest.approx(q[:2] / q[2])
    assert cam.project(feet[None, :2])[0][0] == pytest.approx(xy_feet)


def test_homography_round_trip_is_exact():
    rng = np.random.default_rng(2)
    for _ in range(30):
        cam = random_broadcast_camera(rng)
        h = cam.homography()
        for scale in (1.0, -3.0):  # homographies are defined up to scale, sign included
            back = camera_from_homography(scale * h / h[2, 2], cam.image_size)
            assert back is not None
            assert back.focal_px == pytest.approx(cam.focal_px, rel=1e-6)
            assert back.position == pytest.approx(cam.position, abs=1e-4)
            assert back.pan_tilt_roll == pytest.approx(cam.pan_tilt_roll, abs=1e-7)
            assert reprojection_errors(h, back).max() < 1e-4


def test_soccernet_dict_round_trip():
    cam = random_broadcast_camera(np.random.default_rng(3), size=(960, 540))
    d = camera_to_soccernet_dict(cam)
    assert set(d) >= {"pan_degrees", "tilt_degrees", "roll_degrees", "x_focal_length", "y_focal_length",
                      "principal_point", "position_meters"}
    assert d["principal_point"] == [480.0, 270.0]
    back = camera_from_soccernet_dict(d)
    assert back.image_size == (960, 540)
    assert back.focal_px == pytest.approx(cam.focal_px)
    assert np.allclose(back.rotation, cam.rotation, atol=1e-12)
    assert np.allclose(back.homography(), cam.homography(), rtol=1e-9)


def test_world_cup_prior_decomposes_into_plausible_broadcast_cameras():
    prior = load_camera_prior()
    assert len(prior) == 209
    mean_err, max_err = [], []
    for name, h in prior.items():
        cam = camera_from_homography(h, (1280, 720))
        assert cam is not None, name
        x, y, z = cam.position
        # the main camera: beside the +y touchline, above the pitch (z down), near the halfway line
        assert 40 < y < 120 and -40 < z < -5 and abs(x) < 20, (name, cam.position)
        pan, tilt, roll = np.degrees(cam.pan_tilt_roll)
        assert 60 < tilt < 90 and abs(pan) < 60 and abs(roll) < 3, name
        errors = reprojection_errors(h, cam)
        mean_err.append(errors.mean())
        max_err.append(errors.max())
    mean_err, max_err = np.array(mean_err), np.array(max_err)
    # hand-annotated homographies have 8 degrees of freedom, the camera 7: most fit within a few pixels
    print(f"prior: {np.sum(max_err < 1)} of 209 within 1 px everywhere, {np.sum(mean_err < 1)} within 1 px "
          f"on average, median mean error {np.median(mean_err):.2f} px")
    assert np.sum(max_err < 1.0) >= 10
    assert np.median(mean_err) < 5.0
    assert np.all(mean_err < 20.0)

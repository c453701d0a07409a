"""Pitch model: IFAB geometry in the SoccerNet frame, line masks through homographies."""

import numpy as np
import pytest

from matchflow.models.geometry.camera import PinholeCamera, look_at_rotation
from matchflow.models.geometry.pitch import PitchModel

PITCH = PitchModel()


def length(polyline: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(polyline, axis=0), axis=1)))


def test_straight_lines_have_ifab_lengths():
    lines = PITCH.lines()
    expected = {
        "Side line top": 105.0, "Side line bottom": 105.0, "Side line left": 68.0, "Side line right": 68.0,
        "Middle line": 68.0, "Big rect. left top": 16.5, "Big rect. right bottom": 16.5,
        "Big rect. left main": 40.32, "Big rect. right main": 40.32, "Small rect. left top": 5.5,
        "Small rect. right main": 18.32,
    }
    for name, metres in expected.items():
        assert length(lines[name]) == pytest.approx(metres, abs=1e-9), name


def test_sides_follow_soccernet_frame():
    lines = PITCH.lines()
    assert np.all(lines["Side line top"][:, 1] == -34.0)  # far touchline
    assert np.all(lines["Side line bottom"][:, 1] == 34.0)  # the main camera's touchline
    assert np.all(lines["Side line right"][:, 0] == 52.5)
    assert np.all(lines["Big rect. left main"][:, 0] == pytest.approx(-52.5 + 16.5))
    assert np.all(lines["Small rect. right main"][:, 0] == pytest.approx(52.5 - 5.5))


def test_circles_spots_and_arcs():
    lines = PITCH.lines()
    centre = lines["Circle central"]
    assert np.allclose(np.linalg.norm(centre, axis=1), 9.15)
    assert length(centre) == pytest.approx(2 * np.pi * 9.15, rel=1e-3)
    assert np.max(np.linalg.norm(np.diff(centre, axis=0), axis=1)) <= 0.25 + 1e-9
    for side, sign in (("left", -1.0), ("right", 1.0)):
        spot = lines[f"Penalty spot {side}"][:-1].mean(axis=0)
        assert spot == pytest.approx([sign * (52.5 - 11.0), 0.0], abs=1e-9)
        arc = lines[f"Circle {side}"]
        assert np.allclose(np.linalg.norm(arc - spot, axis=1), 9.15)
        # the arc is the part of the circle outside the penalty area, its ends on the area's line
        assert np.all(sign * arc[:, 0] <= 52.5 - 16.5 + 1e-9)
        assert np.allclose(np.abs(arc[[0, -1], 0]), 52.5 - 16.5)
    for name in ("Corner arc top left", "Corner arc top right", "Corner arc bottom left", "Corner arc bottom right"):
        arc = lines[name]
        corner = np.sign(arc.mean(axis=0)) * [52.5, 34.0]
        assert np.allclose(np.linalg.norm(arc - corner, axis=1), 1.0)
        assert np.all(np.abs(arc[:, 0]) <= 52.5 + 1e-9) and np.all(np.abs(arc[:, 1]) <= 34.0 + 1e-9)
    assert np.allclose(np.linalg.norm(lines["Centre spot"], axis=1), 0.11)


def test_goal_frames_are_3d_with_z_down():
    goals = PITCH.goal_lines()
    assert set(goals) == {
        "Goal left crossbar", "Goal left post left ", "Goal left post right",
        "Goal right crossbar", "Goal right post left", "Goal right post right",
    }
    for _name, line in goals.items():
        assert line.shape == (2, 3)
        assert np.all(np.abs(line[:, 0]) == 52.5)
    assert length(goals["Goal left crossbar"]) == pytest.approx(7.32)
    assert np.all(goals["Goal right crossbar"][:, 2] == -2.44)
    assert length(goals["Goal right post left"]) == pytest.approx(2.44)
    keypoints = PITCH.keypoints()
    assert keypoints["Penalty spot right"] == pytest.approx([41.5, 0.0, 0.0])


def broadcast_camera(aim=(0.0, 0.0, 0.0), focal=1400.0, size=(1280, 720)) -> PinholeCamera:
    position = np.array([0.0, 75.0, -16.0])
    return PinholeCamera(focal, look_at_rotation(position, np.array(aim)), position, size)


def test_line_mask_draws_lines_where_the_homography_says():
    cam = broadcast_camera()
    h = cam.homography()
    mask = PITCH.line_mask(h, (1280, 720), thickness_px=3)
    assert mask.shape == (720, 1280) and mask.dtype == np.uint8
    xy, _ = cam.project(np.column_stack([np.zeros(50), np.linspace(-30, 30, 50)]))  # the halfway line
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < 1280) & (xy[:, 1] >= 0) & (xy[:, 1] < 720)
    assert inside.sum() > 10
    px = np.round(xy[inside]).astype(int)
    assert np.all(mask[px[:, 1], px[:, 0]] == 255)
    # a point on the grass 4 m from any marking stays empty
    (free,), _ = cam.project(np.array([[4.0, -20.0]]))
    assert mask[int(free[1]), int(free[0])] == 0
    # a homography is defined up to scale, sign included
    assert np.array_equal(mask, PITCH.line_mask(-2.5 * h, (1280, 720), thickness_px=3))


def test_line_mask_clips_what_is_behind_the_camera():
    # a low camera on the halfway line looking along it: half the pitch is behind it
    position = np.array([0.0, 0.0, -3.0])
    cam = PinholeCamera(800.0, look_at_rotation(position, np.array([30.0, 0.0, 0.0])), position, (1280, 720))
    mask = PITCH.line_mask(cam.homography(), (1280, 720), thickness_px=2)
    # the horizon (vanishing line of the grass): nothing of the pitch may be drawn above it
    horizon_row = cam.project(np.array([[1e7, 0.0, 0.0]]))[0][0, 1]
    assert 0 < horizon_row < 720
    assert mask[: int(horizon_row) - 2].max() == 0
    assert mask[int(horizon_row) + 2 :].max() == 255


def test_visible_fraction():
    # an affine top view that shows exactly the right half of the pitch
    h = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 340.0], [0.0, 0.0, 1.0]])
    assert PITCH.visible_fraction(h, (525, 680)) == pytest.approx(0.5)
    assert PITCH.visible_fraction(h, (1050, 680)) == pytest.approx(0.5)
    whole = np.array([[10.0, 0.0, 525.0], [0.0, 10.0, 340.0], [0.0, 0.0, 1.0]])
    assert PITCH.visible_fraction(whole, (1050, 680)) == pytest.approx(1.0)
    away = broadcast_camera(aim=(0.0, -400.0, -200.0))  # looking at the sky
    assert PITCH.visible_fraction(away.homography(), (1280, 720)) == 0.0
    broadcast = PITCH.visible_fraction(broadcast_camera().homography(), (1280, 720))
    assert 0.2 < broadcast < 0.9

"""Player localization functions on hand-made cases with known answers, and the stage on a hand-made batch."""

from __future__ import annotations

import numpy as np
import pytest

from matchflow.models.geometry.camera import PinholeCamera, look_at_rotation, normalize_homography
from matchflow.models.representations import localization as loc

W, H = 1280, 720
# image -> pitch: 10 pixels per metre, image centre at the centre spot
AFFINE = np.array([[0.1, 0.0, -64.0], [0.0, 0.1, -36.0], [0.0, 0.0, 1.0]])
GRASS = (40, 140, 50)
STANDS = (120, 110, 100)
RED = (220, 30, 30)


def _pitch_image() -> np.ndarray:
    """Stands above row 240, grass below."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = GRASS
    img[:240] = STANDS
    return img


def test_foot_point_is_the_middle_of_the_bottom_edge_through_the_homography():
    boxes = np.array([[630.0, 300.0, 650.0, 400.0], [100.0, 500.0, 140.0, 600.0]])
    np.testing.assert_allclose(loc.foot_points(boxes), [[640.0, 400.0], [120.0, 600.0]])
    xy = loc.image_to_pitch(AFFINE, loc.foot_points(boxes), (W, H))
    np.testing.assert_allclose(xy, [[0.0, 4.0], [-52.0, 24.0]], atol=1e-9)
    # a 9-value row as the calibration table stores it works the same
    np.testing.assert_allclose(loc.image_to_pitch(AFFINE.ravel().tolist(), [[640.0, 360.0]], (W, H)), [[0.0, 0.0]])


def test_perspective_homography_recovers_pitch_points_and_refuses_points_above_the_horizon():
    pos = np.array([0.0, 60.0, -20.0])  # 60 m from the centre line, 20 m up, behind the near touchline
    cam = PinholeCamera(1500.0, look_at_rotation(pos, np.array([10.0, -60.0, 0.0])), pos, (W, H))
    h_img = normalize_homography(np.linalg.inv(cam.homography()))  # image -> pitch
    truth = np.array([[10.0, 5.0], [-20.0, -25.0], [40.0, 20.0]])
    px, _ = cam.project(np.c_[truth, np.zeros(3)])
    boxes = np.c_[px[:, 0] - 8, px[:, 1] - 60, px[:, 0] + 8, px[:, 1]]
    np.testing.assert_allclose(loc.image_to_pitch(h_img, loc.foot_points(boxes), (W, H)), truth, atol=1e-6)
    # the same homography scaled by -1 is the same calibration
    np.testing.assert_allclose(loc.image_to_pitch(-h_img, loc.foot_points(boxes), (W, H)), truth, atol=1e-6)
    # a point in the sky: above the horizon the ray never meets the grass
    sky, _ = cam.project(np.array([[0.0, -5000.0, -300.0]]))
    assert 0 <= sky[0, 1] < H and 0 <= sky[0, 0] < W  # in the image
    assert np.isnan(loc.image_to_pitch(h_img, sky, (W, H))).all()
    # no calibration: NaN, never a guess
    assert np.isnan(loc.image_to_pitch(np.full(9, np.nan), [[640.0, 600.0]], (W, H))).all()


def test_inside_pitch_with_margin():
    xy = np.array([[0.0, 0.0], [52.5, 34.0], [53.4, 0.0], [53.6, 0.0], [0.0, -35.2], [np.nan, 0.0]])
    assert loc.inside_pitch(xy, 1.0).tolist() == [True, True, True, False, False, False]
    assert loc.inside_pitch(xy, 0.0).tolist() == [True, True, False, False, False, False]


def test_field_mask_and_boxes_on_and_off_the_field():
    img = _pitch_image()
    field = loc.field_mask(img)
    assert field.mask.shape == (90, 160) and field.scale == pytest.approx(160 / W)
    assert field.mask[80, 80] and not field.mask[10, 80]
    boxes = np.array([
        [600.0, 400.0, 630.0, 480.0],  # on the grass
        [600.0, 60.0, 630.0, 140.0],  # in the stands
        [600.0, 180.0, 630.0, 250.0],  # feet just on the grass edge
    ])
    assert loc.boxes_touch_field(boxes, field).tolist() == [True, False, True]
    # a crowd shot (no grass): nobody touches the field
    crowd = np.full((H, W, 3), STANDS, np.uint8)
    assert not loc.boxes_touch_field(boxes, loc.field_mask(crowd)).any()


def test_on_field_needs_the_pitch_and_the_field_and_falls_back_to_the_field_alone():
    xy = np.array([[0.0, 0.0], [60.0, 0.0], [0.0, 0.0], [np.nan, np.nan], [np.nan, np.nan]])
    touches = np.array([True, True, False, True, False])
    calibrated = np.array([True, True, True, False, False])
    assert loc.on_field(xy, touches, calibrated, 1.0).tolist() == [True, False, False, True, False]
    assert loc.on_field(xy[:1] + [[53.0, 0.0]], touches[:1], True, 1.0).tolist() == [True]
    assert loc.on_field(xy[:1] + [[53.0, 0.0]], touches[:1], True, 0.0).tolist() == [False]


def _player(img: np.ndarray, box: tuple[int, int, int, int], colour) -> None:
    """An ellipse-ish figure of ``colour`` filling the middle of ``box`` (grass around it)."""
    x1, y1, x2, y2 = box
    img[y1:y2, x1 + (x2 - x1) // 4 : x2 - (x2 - x1) // 4] = colour


def test_colour_from_the_mask_and_from_the_box_when_the_mask_is_too_small():
    img = _pitch_image()
    boxes = np.array([[400, 400, 440, 520], [800, 400, 840, 520], [1000, 300, 1012, 330]], float)
    _player(img, (400, 400, 440, 520), RED)
    _player(img, (800, 400, 840, 520), (20, 40, 200))
    _player(img, (1000, 300, 1012, 330), (240, 240, 20))
    scale = 540 / H  # the detector's 540-pixel working height, stride 4
    masks = np.zeros((136, 240), np.int16)

    def cell(x: float, y: float) -> tuple[int, int]:  # native pixel -> mask cell
        return int(round(((y + 0.5) * scale - 0.5) / 4)), int(round(((x + 0.5) * scale - 0.5) / 4))

    # player 1: its mask covers the red figure only, and one wrong pixel on the grass
    for y in range(404, 516, 6):
        for x in range(412, 429, 4):
            masks[cell(x, y)] = 1
    masks[cell(445, 530)] = 1
    # player 2: a two-pixel mask (under the default minimum): the colour comes from the box
    masks[cell(820, 450)] = 2
    masks[cell(820, 460)] = 2
    grass = loc.field_mask(img).grass
    assert grass is not None and abs(grass.hue - 63) <= 2  # the grass hue (OpenCV units)
    colours, from_mask = loc.player_colors(img, boxes, masks, scale, grass=grass)
    assert from_mask.tolist() == [True, False, False]
    # mask colour: the red of the figure exactly (the stray mask pixel on the grass is not the player's own)
    np.testing.assert_array_equal(colours[0], RED)
    np.testing.assert_array_equal(colours[1], (20, 40, 200))  # non-grass pixels of the box: the figure exactly
    np.testing.assert_array_equal(colours[2], (240, 240, 20))
    # without masks at all every colour comes from the boxes
    c2, fm2 = loc.player_colors(img, boxes, None, grass=grass)
    assert not fm2.any()
    np.testing.assert_array_equal(c2[0], RED)
    # an all-grass box: its mean (grass) rather than nothing
    c3, _ = loc.player_colors(img, np.array([[100.0, 600.0, 120.0, 640.0]]), None, grass=grass)
    np.testing.assert_array_equal(c3[0], GRASS)


def test_the_mask_grid_comes_with_the_masks_from_the_detection_stage():
    from matchflow.stages.detection import DetectionStage
    from matchflow.stages.localization import _mask_grid
    from matchflow.video import VideoInfo

    for (w, h), hin in (((1280, 720), 540), ((640, 360), 540), ((1920, 1080), 720), ((640, 360), 300)):
        attrs = DetectionStage({"input_height": hin})._mask_attrs(VideoInfo("x", 10, 25.0, w, h))
        scale, stride = _mask_grid(attrs)
        assert scale == pytest.approx(hin / h) and stride == 4
    with pytest.raises(ValueError, match="working_scale"):
        _mask_grid({})


def test_box_areas_in_native_pixels():
    np.testing.assert_allclose(loc.box_areas(np.array([[0, 0, 10, 20], [5, 5, 5, 9]], float)), [200.0, 0.0])


def _batch(images, frames, players, calibration, masks, ball):
    from matchflow.stages.base import Batch, HalfContext
    from matchflow.video import VideoInfo

    ctx = HalfContext("g", "g", 1, VideoInfo("x", 100, 25.0, W, H), 2.0)
    b = Batch(ctx, frames, frames * 12, frames * 0.5, images)
    b.tables = {"players": players, "calibration": calibration, "ball": ball}
    b.arrays = {"masks": masks}
    b.array_attrs = {"masks": {"working_scale": masks.shape[1] * 4 / images.shape[1], "mask_stride": 4}}
    return b


def test_stage_fills_players_and_ball_with_null_positions_without_calibration():
    from matchflow.stages.localization import LocalizationStage

    img = _pitch_image()
    _player(img, (630, 400, 650, 500), RED)
    images = np.stack([img, img])
    frames = np.array([6, 7], np.int32)
    box = [630.0, 400.0, 650.0, 500.0]
    stands = [100.0, 50.0, 120.0, 120.0]
    far = [1200.0, 600.0, 1220.0, 700.0]  # foot at x = 57 m: off the pitch although on grass
    b = np.array([box, stands, far, box, stands], np.float32)
    players = {"frame": np.array([6, 6, 6, 7, 7], np.int32), "det": np.array([0, 1, 2, 0, 1], np.int16),
               **{k: b[:, i] for i, k in enumerate(("x1", "y1", "x2", "y2"))}}
    calibration = {"frame": frames, "homography": [AFFINE.ravel().tolist(), None],
                   "valid": np.array([True, False])}
    ball = {"frame": np.array([6, 7], np.int32), "x": np.array([700.0, 700.0], np.float32),
            "y": np.array([460.0, 460.0], np.float32)}
    batch = _batch(images, frames, players, calibration, np.zeros((2, 136, 240), np.int16), ball)
    stage = LocalizationStage()
    batch._allowed = frozenset(stage.writes)
    stage.process(batch)
    p = batch.tables["players"]
    np.testing.assert_allclose(p["pitch_x"][:1], [0.0], atol=1e-6)
    np.testing.assert_allclose(p["pitch_y"][:1], [14.0], atol=1e-5)
    assert p["pitch_x"].dtype == np.float32 and np.isnan(p["pitch_x"][3:]).all() and np.isnan(p["pitch_y"][3:]).all()
    assert p["on_field"].tolist() == [True, False, False, True, False]
    assert (p["color_r"][[0, 3]] == RED[0]).all() and (p["color_g"][[0, 3]] == RED[1]).all()
    assert p["color_r"].dtype == np.uint8
    np.testing.assert_allclose(p["area"], [2000.0, 1400.0, 2000.0, 2000.0, 1400.0])
    np.testing.assert_allclose(batch.tables["ball"]["pitch_x"], [6.0, np.nan], atol=1e-6)
    np.testing.assert_allclose(batch.tables["ball"]["pitch_y"], [10.0, np.nan], atol=1e-6)


def test_stage_rejects_unknown_parameters():
    from matchflow.stages.localization import LocalizationStage

    with pytest.raises(ValueError, match="field_margin"):
        LocalizationStage({"field_margin": 2.0})
    assert LocalizationStage({"field_margin_m": 2.5, "min_mask_pixels": 3}).margin == 2.5

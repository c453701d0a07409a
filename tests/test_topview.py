"""Top views (colour composition and binary channels) on hand-made cases, and the ``topview`` stage on
hand-made batches: ground-truth positions and matching detections give identical views."""

from __future__ import annotations

import numpy as np
import pytest

from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.models.geometry.pitch import PitchModel
from matchflow.models.representations.topview import (
    LAYOUTS,
    PLAYER_PX,
    SIZE,
    TopviewRenderer,
    layout_attrs,
    pitch_to_topview,
    render_topviews,
    renderer,
    topview_matrix,
    topview_to_pitch,
)
from matchflow.stages.base import Batch, HalfContext
from matchflow.stages.topview import TopviewStage
from matchflow.video import VideoInfo

RED = (200, 30, 40)


def overhead(x0: float, y0: float, w_m: float, h_m: float, s: float = 10.0) -> tuple[np.ndarray, tuple[int, int]]:
    """A pitch-to-image homography of a camera looking straight down at the rectangle [x0, x0 + w_m] x
    [y0, y0 + h_m] (metres), ``s`` pixels per metre, and the image size that sees exactly that rectangle."""
    h = np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0], [0.0, 0.0, 1.0]])
    return h, (int(round(w_m * s)), int(round(h_m * s)))


def test_mapping_matrix_round_trip_and_layouts():
    m = topview_matrix("ccbv")
    assert m.shape == (3, 3)
    # centre spot in the middle of the view; aspect kept; 5 m margin beyond the goal lines
    np.testing.assert_allclose(pitch_to_topview([[0.0, 0.0]], m), [[111.5, 111.5]])
    assert m[0, 0] == m[1, 1] == pytest.approx(224 / 115)
    np.testing.assert_allclose(pitch_to_topview([[-57.5, 57.5], [57.5, -57.5]], m), [[-0.5, 223.5], [223.5, -0.5]])
    # +y (main camera side) is at the bottom, +x to the right
    (u, v), = pitch_to_topview([[10.0, 20.0]], m)
    assert u > 111.5 and v > 111.5
    rng = np.random.default_rng(1)
    p = rng.uniform(-60, 60, (50, 2))
    for layout in LAYOUTS:
        mm = topview_matrix(layout)
        np.testing.assert_allclose(topview_to_pitch(pitch_to_topview(p, mm), mm), p, atol=1e-9)
        attrs = layout_attrs(layout)
        assert attrs["layout"] == layout
        np.testing.assert_allclose(np.asarray(attrs["pitch_to_topview"]), mm)
    calf = topview_matrix("calf")
    assert calf[0, 0] != calf[1, 1]  # stretched: the pitch plus 2.5 m fills the square
    np.testing.assert_allclose(pitch_to_topview([[-55.0, -36.5], [55.0, 36.5]], calf), [[-0.5, -0.5], [223.5, 223.5]])
    assert layout_attrs("calf")["aspect_kept"] is False and layout_attrs("ccbv")["aspect_kept"] is True
    with pytest.raises(ValueError, match="layout"):
        topview_matrix("sideways")


def test_lines_are_four_pixels_wide_and_static():
    r = TopviewRenderer("ccbv")
    cc, bc = r.render(None, (1280, 720))
    lines = bc[0]
    assert set(np.unique(lines)) == {0, 1}
    assert set(np.unique(cc)) == {0, 255}
    np.testing.assert_array_equal(cc[..., 0] == 255, lines == 1)  # white exactly where the lines are
    m = r.matrix
    # halfway line (x = 0) crossed at the row of y = -25 m: a run of 4 white pixels around u = 111.5
    (u, v), = pitch_to_topview([[0.0, -25.0]], m)
    row = lines[int(round(v))]
    cols = np.flatnonzero(row[90:130]) + 90
    assert len(cols) == 4 and cols.min() <= u <= cols.max()
    # touchlines at the top and bottom, nothing beyond the 5 m margin
    (_, v_top), (_, v_bottom) = pitch_to_topview([[0.0, -34.0], [0.0, 34.0]], m)
    assert lines[int(round(v_top)), 20:200].all() and lines[int(round(v_bottom)), 20:200].all()
    assert not lines[: int(v_top) - 3].any() and not lines[int(v_bottom) + 4 :].any()
    # the same static layer every time
    np.testing.assert_array_equal(renderer("ccbv").render(None, (1280, 720))[1], bc)


def test_seen_polygon_lands_where_expected():
    h, size = overhead(12.0, -25.0, 18.0, 20.0)  # sees [12, 30] x [-25, -5] m: no marking there
    r = TopviewRenderer("ccbv")
    cc, bc = r.render(h, size)
    u0, v0 = pitch_to_topview([[12.0, -25.0]], r.matrix)[0]
    u1, v1 = pitch_to_topview([[30.0, -5.0]], r.matrix)[0]
    cols, rows = np.arange(SIZE), np.arange(SIZE)
    inside = ((cols[None, :] > u0 + 1) & (cols[None, :] < u1 - 1) & (rows[:, None] > v0 + 1) & (rows[:, None] < v1 - 1))
    outside = ((cols[None, :] < u0 - 1) | (cols[None, :] > u1 + 1)
               | (rows[:, None] < v0 - 1) | (rows[:, None] > v1 + 1))
    assert bc[1][inside].all() and not bc[1][outside].any()
    # CC: the contour is white along the four sides, the inside stays black
    lines_only = r.lines_cc()
    contour = (cc != lines_only).any(axis=2)
    assert contour.any()
    cu, cv = np.nonzero(contour.T)
    near_side = (np.minimum(abs(cu - u0), abs(cu - u1)) <= 1.5) | (np.minimum(abs(cv - v0), abs(cv - v1)) <= 1.5)
    assert near_side.all()
    assert (cc[contour] == 255).all()
    for u in (u0, u1):
        assert contour[int(round(v0)) + 4 : int(round(v1)) - 3, int(round(u))].all()
    deep = (cols[None, :] > u0 + 3) & (cols[None, :] < u1 - 3) & (rows[:, None] > v0 + 3) & (rows[:, None] < v1 - 3)
    assert (cc[deep] == 0).all()
    # the seen polygon is clipped to the pitch: a camera seeing beyond the goal line
    h2, size2 = overhead(40.0, -10.0, 30.0, 20.0)
    poly = r.seen_polygon(h2, size2)
    back = topview_to_pitch(poly, r.matrix)
    assert back[:, 0].max() == pytest.approx(52.5) and back[:, 0].min() == pytest.approx(40.0)


def test_player_at_the_centre_spot_is_an_8x8_square_of_its_colour():
    h, size = overhead(-20.0, -15.0, 40.0, 30.0)
    for layout in LAYOUTS:
        cc, bc = render_topviews(h, size, np.array([[0.0, 0.0]]), np.array([RED], np.uint8), layout)
        # the centre spot is at pixel 111.5: the square covers columns and rows 108..115
        assert (cc[108:116, 108:116] == RED).all()
        assert not (cc[107, 108:116] == RED).all(axis=1).any() and not (cc[116, 108:116] == RED).all(axis=1).any()
        assert not (cc[108:116, 107] == RED).all(axis=1).any() and not (cc[108:116, 116] == RED).all(axis=1).any()
        assert bc[2].sum() == PLAYER_PX * PLAYER_PX and bc[2, 108:116, 108:116].all()
        assert ((cc == RED).all(axis=2)).sum() == 64


def test_players_are_drawn_over_lines_but_not_over_the_lines_channel():
    h, size = overhead(-20.0, -15.0, 40.0, 30.0)
    on_line = np.array([[0.0, 10.0]])  # on the halfway line
    cc, bc = render_topviews(h, size, on_line, np.array([RED], np.uint8))
    (u, v), = pitch_to_topview(on_line, topview_matrix("ccbv"))
    a, b = int(np.floor(u - 3)), int(np.floor(v - 3))
    square = cc[b : b + 8, a : a + 8]
    assert (square == RED).all()  # the line is hidden in the colour composition
    assert bc[0, b : b + 8, a : a + 8].any()  # and still there in its binary channel
    np.testing.assert_array_equal(bc[0], renderer("ccbv").lines_bc()[0])


def test_no_calibration_gives_lines_only():
    rng = np.random.default_rng(3)
    pos = rng.uniform(-30, 30, (10, 2))
    col = rng.integers(0, 256, (10, 3)).astype(np.uint8)
    r = renderer("ccbv")
    for h in (None, np.full((3, 3), np.nan)):
        cc, bc = r.render(h, (1280, 720), pos, col)
        np.testing.assert_array_equal(cc, r.lines_cc())
        assert bc[0].sum() > 1000 and not bc[1].any() and not bc[2].any()


def test_players_outside_the_view_are_clipped_and_nan_positions_skipped():
    h, size = overhead(-50.0, -30.0, 100.0, 60.0)
    pos = np.array([[57.0, 0.0], [np.nan, 1.0], [-10.0, 0.0]])
    cc, bc = render_topviews(h, size, pos, np.array([RED, RED, RED], np.uint8))
    # x = 57 m is at u = 222.5: a square cut at the right edge (columns 219..223); the NaN row is skipped
    assert bc[2, :, 219:].sum() == 8 * 5
    assert bc[2].sum() == 64 + 40


def _prior_camera(i: int = 0) -> np.ndarray:
    prior = load_camera_prior()
    return prior[sorted(prior)[i]]


def _gt_players(h: np.ndarray, n: int = 22, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions inside the seen part of the pitch of camera ``h`` and two kit colours."""
    rng = np.random.default_rng(seed)
    poly = PitchModel().visible_polygon(h, (1280, 720))
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    pts = []
    import cv2

    contour = poly.astype(np.float32).reshape(-1, 1, 2)
    while len(pts) < n:
        p = rng.uniform(lo, hi)
        if cv2.pointPolygonTest(contour, (float(p[0]), float(p[1])), False) > 0:
            pts.append(p)
    kits = np.array([[230, 230, 30], [20, 60, 220]], np.uint8)
    return np.array(pts), kits[rng.integers(0, 2, n)]


def test_identical_views_from_ground_truth_and_matching_detections():
    """Same positions and colours -> identical pixels, whatever the order of the players; detections that
    are not on the field or have no position do not change the view."""
    h = _prior_camera(3)
    gt_pos, gt_col = _gt_players(h)
    ref_cc, ref_bc = render_topviews(h, (1280, 720), gt_pos, gt_col)
    assert ref_bc[2].sum() > 10 * 64  # most squares are visible (some overlap)
    perm = np.random.default_rng(7).permutation(len(gt_pos))
    cc, bc = render_topviews(h, (1280, 720), gt_pos[perm], gt_col[perm])
    np.testing.assert_array_equal(cc, ref_cc)
    np.testing.assert_array_equal(bc, ref_bc)
    # a moved player changes the view: the comparison can fail
    moved = gt_pos.copy()
    moved[0] += 3.0
    assert not np.array_equal(render_topviews(h, (1280, 720), moved, gt_col)[0], ref_cc)


def _batch(frames: list[int], homs: list[np.ndarray | None], players: dict[str, np.ndarray]) -> Batch:
    video = VideoInfo("x.mp4", 100, 25.0, 1280, 720)
    ctx = HalfContext("g", "g", 1, video, 2.0)
    n = len(frames)
    b = Batch(ctx, np.asarray(frames, np.int32), np.asarray(frames) * 12, np.asarray(frames) / 2.0,
              np.zeros((n, 720, 1280, 3), np.uint8))
    b.tables["calibration"] = {
        "frame": np.asarray(frames, np.int32),
        "homography_inv": [None if hh is None else hh.ravel().tolist() for hh in homs],
        "homography": [None if hh is None else np.linalg.inv(hh).ravel().tolist() for hh in homs],
        "valid": np.array([hh is not None for hh in homs]),
        "score": np.ones(n, np.float32),
    }
    b.tables["players"] = players
    return b


def test_topview_stage_matches_ground_truth_rendering():
    h0, h2 = _prior_camera(3), _prior_camera(40)
    gt0, col0 = _gt_players(h0, seed=1)
    gt2, col2 = _gt_players(h2, seed=2)
    # detections: the ground truth in another order, plus an off-field person and one without a position
    rows = []
    for f, (pos, col) in ((10, (gt0, col0)), (12, (gt2, col2))):
        for k in np.random.default_rng(f).permutation(len(pos)):
            rows.append((f, pos[k, 0], pos[k, 1], True, *col[k]))
        rows.append((f, 60.0, 0.0, False, 255, 0, 0))  # behind the goal, not on the field
        rows.append((f, np.nan, np.nan, True, 0, 255, 0))
    rows.append((11, 0.0, 0.0, True, 255, 255, 255))  # frame 11 has no valid calibration
    rows.sort(key=lambda r: r[0])
    cols = list(zip(*rows))
    players = {
        "frame": np.asarray(cols[0], np.int32),
        "pitch_x": np.asarray(cols[1], np.float32), "pitch_y": np.asarray(cols[2], np.float32),
        "on_field": np.asarray(cols[3], bool),
        "color_r": np.asarray(cols[4], np.uint8), "color_g": np.asarray(cols[5], np.uint8),
        "color_b": np.asarray(cols[6], np.uint8),
    }
    batch = _batch([10, 11, 12], [h0, None, h2], players)
    stage = TopviewStage()
    batch._allowed = frozenset(stage.writes)
    stage.process(batch)
    cc, bc = batch.arrays["topview_cc"], batch.arrays["topview_bc"]
    assert cc.shape == (3, 224, 224, 3) and cc.dtype == np.uint8
    assert bc.shape == (3, 3, 224, 224) and bc.dtype == np.uint8
    # positions went through float32 in the table: the ground truth rendered from the same float32 values
    for i, (h, pos, col) in enumerate(((h0, gt0, col0), (None, None, None), (h2, gt2, col2))):
        pos32 = None if pos is None else pos.astype(np.float32).astype(float)
        ref_cc, ref_bc = render_topviews(h, (1280, 720), pos32, col)
        np.testing.assert_array_equal(cc[i], ref_cc)
        np.testing.assert_array_equal(bc[i], ref_bc)
    assert not bc[1, 1:].any()  # the uncalibrated frame: lines only


def test_topview_stage_params_and_specs():
    with pytest.raises(ValueError, match="layuot"):
        TopviewStage({"layuot": "calf"})
    with pytest.raises(ValueError, match="layout"):
        TopviewStage({"layout": "radar"})
    specs = TopviewStage({"layout": "calf"}).array_specs(VideoInfo("x.mp4", 100, 25.0, 1280, 720))
    assert specs["topview_cc"].shape == (224, 224, 3) and specs["topview_cc"].dtype == "uint8"
    assert specs["topview_bc"].shape == (3, 224, 224) and specs["topview_bc"].dtype == "uint8"
    assert specs["topview_bc"].attrs["values"] == "0 or 1"
    assert specs["topview_bc"].attrs["channels"] == ["lines", "seen_polygon", "players"]
    np.testing.assert_allclose(np.asarray(specs["topview_cc"].attrs["pitch_to_topview"]), topview_matrix("calf"))


def test_seen_polygon_is_the_pitch_models_on_every_prior_camera():
    r = renderer("ccbv")
    pitch = PitchModel()
    for name, h in load_camera_prior().items():
        for hh in (h, -h):  # a homography is defined up to its sign
            expected = pitch_to_topview(pitch.visible_polygon(hh, (1280, 720)), r.matrix)
            np.testing.assert_allclose(r.seen_polygon(hh, (1280, 720)), expected, atol=1e-9, err_msg=name)
    # a camera that sees only a sliver of the pitch (the exact vote decides)
    h, size = overhead(52.0, -10.0, 20.0, 20.0)
    expected = pitch_to_topview(pitch.visible_polygon(h, size), r.matrix)
    np.testing.assert_allclose(r.seen_polygon(h, size), expected, atol=1e-9)

"""`matchflow report`: the static HTML report of an output root.

Unit tests of the drawing and summary functions on a hand-made output root (tables, manifest, Zarr top views
and an H.264 video whose pitch lines are drawn through a known homography), the trajectories and crop strips
of tracks, the page of a run with tracks and teams (hand-written as the tracking and teams stages write them) and
of one without (teams guessed from kit colours), of a run with only the `frames` stage and of a run with a missing
video, the real flow followed by `matchflow report` through the CLI,
and a headless Chromium (Debian's `chromium` package: `make browser` installs it) that loads the pages and
checks that their images decode.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from matchflow.html_report import (
    CLASS_COLOURS,
    GROUP_COLOURS,
    LINE_COLOUR,
    build_report,
    crop_strip,
    draw_frame,
    draw_positions,
    draw_trajectories,
    game_counts,
    kit_groups,
    load_game,
    longest_tracks,
    pick_frames,
    pick_minute,
    render_report,
    spread,
    team_of_rows,
    topview_strip,
    track_paths,
)
from matchflow.models.geometry.pitch import PitchModel, draw_polylines
from matchflow.storage import arrays as zarr_io
from matchflow.storage.corpus import game_id
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import write_manifest
from matchflow.storage.tables import write_part
from matchflow.synth.video import H264Writer
from matchflow.video import sample_indices

#: pitch metres -> pixels of a 640x360 frame: the whole pitch seen from above (5 px/m across, 4 px/m down)
H_INV = np.array([[5.0, 0.0, 320.0], [0.0, 4.0, 180.0], [0.0, 0.0, 1.0]])
W, H = 640, 360
RED, BLUE, BLACK = (200, 30, 30), (30, 40, 200), (15, 15, 15)


def _pitch_frame() -> np.ndarray:
    """RGB grass with the white IFAB markings seen through H_INV."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = (40, 120, 50)
    draw_polylines(img, H_INV, list(PitchModel().lines().values()), (250, 250, 250), 2, False)
    return img


def _write_video(path: Path, n: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = np.ascontiguousarray(_pitch_frame()[:, :, ::-1])
    with H264Writer(path, W, H, 25, 25) as video:
        for _ in range(n):
            video.write(bgr)


#: The people of `_players` (class, kit, pitch x, y, on the field) and, as the teams stage would write them, the
#: team and role of their tracks (track = det): the second red player is the goalkeeper of team 0.
PEOPLE = [("player", RED, -20.0, -10.0, True), ("player", RED, -30.0, 5.0, True),
          ("player", BLUE, 20.0, 10.0, True), ("player", BLUE, 25.0, -5.0, True),
          ("referee", BLACK, 0.0, 0.0, True), ("player", RED, -40.0, 40.0, False)]
TRACK_TEAMS = [0, 0, 1, 1, None, None]
TRACK_ROLES = ["player", "goalkeeper", "player", "player", "referee", "other"]


def _players(frames: np.ndarray, moving: bool = False) -> dict:
    """Per frame: two red and two blue players on the field, a referee, one red player off the field
    (``moving``: each 1 m further toward +x per sampled frame)."""
    rows: dict[str, list] = {k: [] for k in ("frame", "t", "det", "x1", "y1", "x2", "y2", "score", "cls", "pitch_x",
                                             "pitch_y", "on_field", "color_r", "color_g", "color_b", "area")}
    for f in frames:
        for d, (cls, rgb, px, py, on) in enumerate(PEOPLE):
            px = px + (float(f) if moving else 0.0)
            u, v = H_INV[0, 0] * px + H_INV[0, 2], H_INV[1, 1] * py + H_INV[1, 2]
            for k, val in (("frame", f), ("t", f / 2.0), ("det", d), ("x1", u - 5), ("y1", v - 20), ("x2", u + 5),
                           ("y2", v), ("score", 0.9), ("cls", cls), ("pitch_x", px), ("pitch_y", py),
                           ("on_field", on), ("color_r", rgb[0]), ("color_g", rgb[1]), ("color_b", rgb[2]),
                           ("area", 200.0)):
                rows[k].append(val)
    return {k: np.asarray(v) if k not in ("cls",) else np.asarray(v, dtype=object) for k, v in rows.items()}


def make_run(root: Path, *, stages: tuple[str, ...] = ("frames", "calibration", "detection", "localization",
                                                          "topview"), video: bool = True) -> dict:
    """A hand-made output root of one committed game (one half, 2 fps over a 4 s video: 8 sampled frames, the
    calibration of frame 2 not valid, a ball in frames 0..2) and one failed game. With "tracking" in ``stages``
    the people move and ``players.track`` is their det; with "teams" also ``players.team`` and the ``tracks``
    table (TRACK_TEAMS, TRACK_ROLES)."""
    corpus, out = root / "corpus", root / "out"
    key = "league/2026 - A v B"
    video_path = corpus / "league" / "2026 - A v B" / "1_360p.mp4"
    if video:
        _write_video(video_path)
    gid = game_id(key)
    layout = OutputLayout.at(str(out))
    vf = sample_indices(100, 25.0, 2.0)
    frames = np.arange(len(vf), dtype=np.int32)
    t = frames / 2.0
    write_part(layout, "frames", gid, key, 1, 0, {"frame": frames, "t": t, "video_frame": vf.astype(np.int32),
                                                   "width": np.full(len(vf), W), "height": np.full(len(vf), H)})
    rows = {"frames": len(vf)}
    if "calibration" in stages:
        valid = np.ones(len(vf), bool)
        valid[2] = False
        hinv = [H_INV.ravel().tolist() if v else None for v in valid]
        h = [np.linalg.inv(H_INV).ravel().tolist() if v else None for v in valid]
        write_part(layout, "calibration", gid, key, 1, 0, {"frame": frames, "t": t, "homography": h,
                                                            "homography_inv": hinv,
                                                            "score": np.where(valid, 0.9, 0.2), "valid": valid})
        rows["calibration"] = len(vf)
    if "detection" in stages:
        p = _players(frames, moving="tracking" in stages)
        if "localization" not in stages:
            for k in ("pitch_x", "pitch_y", "on_field", "color_r", "color_g", "color_b", "area"):
                p.pop(k)
        if "tracking" in stages:
            p["track"] = p["det"].astype(np.int32)
        if "teams" in stages:
            p["team"] = [TRACK_TEAMS[d] for d in p["det"]]
            k = len(PEOPLE)
            write_part(layout, "tracks", gid, key, 1, 0, {
                "track": np.arange(k, dtype=np.int32), "first_frame": np.zeros(k, np.int32),
                "last_frame": np.full(k, len(vf) - 1, np.int32), "frames": np.full(k, len(vf), np.int32),
                "team": TRACK_TEAMS, "cls": TRACK_ROLES,
                "pitch_x": [x + (len(vf) - 1) / 2 for _, _, x, _, _ in PEOPLE], "pitch_y": [y for *_, y, _ in PEOPLE]})
            rows["tracks"] = k
        write_part(layout, "players", gid, key, 1, 0, p)
        bf = frames[:3]  # a ball in the first three frames
        write_part(layout, "ball", gid, key, 1, 0, {"frame": bf, "t": bf / 2.0, "x": np.full(3, 320.0),
                                                     "y": np.full(3, 180.0), "score": np.full(3, 0.8)})
        rows.update(players=len(p["frame"]), ball=3)
    zurl = layout.zarr(gid)
    zarr_io.open_game_group(zurl, mode="w")
    if "topview" in stages:
        zarr_io.create_half(zurl, 1, len(vf), {"topview_cc": zarr_io.ArraySpec((224, 224, 3), "uint8")}, 4, {})
        tiles = np.zeros((len(vf), 224, 224, 3), np.uint8)
        for i in range(len(vf)):
            tiles[i, :, :, i % 3] = 60 + 20 * i
        zarr_io.write_frames(zurl, 1, "topview_cc", 0, tiles)
    manifest = {
        "status": "committed", "game": key, "game_id": gid, "run_id": "run-1",
        "stages": {s: "1" for s in stages},
        "halves": {"1": {"path": str(video_path), "n_frames": 100, "fps": 25.0, "width": W, "height": H}},
        "sampled_frames": len(vf), "rows": rows,
        "seconds": {"decode": 0.5, "frames": 0.01, "calibration": 2.0, "detection": 4.0, "write": 0.1},
        "chunk_runs": [{"half": 1, "chunk": 0, "frames": len(vf), "wall_s": 6.7}],
        "started_at": "2026-11-22T10:00:00+00:00", "finished_at": "2026-11-22T10:00:07+00:00", "errors": [],
    }
    write_manifest(layout, gid, manifest)
    bad = "league/2026 - C v D"
    write_manifest(layout, game_id(bad), {"status": "failed", "game": bad, "game_id": game_id(bad), "run_id": "run-1",
                                          "errors": ["VideoError: 1_720p.mkv: cannot decode frames 0..15 <corrupt>"]})
    return {"out": out, "corpus": corpus, "gid": gid, "key": key, "layout": layout, "manifest": manifest,
            "video": video_path, "n": len(vf)}


#: The stages of a run with tracks and teams (the game-level stages after the chunk stages).
TRACKED = ("frames", "calibration", "detection", "localization", "topview", "reid", "tracking", "teams")


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path)


@pytest.fixture
def tracked_run(tmp_path):
    return make_run(tmp_path, stages=TRACKED)


def _imgs(page: str) -> list[str]:
    return re.findall(r'<img src="(data:image/jpeg;base64,[^"]+)"', page)


# ------------------------------------------------------------------------------------------- drawing
def test_draw_frame_lines_boxes_and_ball_land_where_they_project():
    raw = np.full((720, 1280, 3), 90, np.uint8)
    native = 2.0 * np.diag([1.0, 1.0, 0.5]) @ H_INV  # the same view in 1280x720 pixels
    plain = draw_frame(raw, None, width=640)
    assert plain.shape == (360, 640, 3) and (plain == 90).all()

    lined = draw_frame(raw, native.ravel().tolist(), width=640)
    mask = PitchModel().line_mask(H_INV, (W, H), thickness_px=2) > 0
    assert mask.sum() > 1000
    changed = (lined != plain).any(axis=2)
    assert (changed == mask).all()  # exactly the projected markings, at display scale
    assert (lined[mask] == LINE_COLOUR).all()
    # the halfway line (x = 0 m) is at column 320, from row 44 to row 316
    assert (lined[100:300, 320] == LINE_COLOUR).all() and (lined[100:300, 250] == 90).all()

    import pandas as pd

    players = pd.DataFrame({"x1": [200.0], "y1": [100.0], "x2": [260.0], "y2": [220.0], "cls": ["referee"]})
    boxed = draw_frame(raw, None, players, (640.0, 360.0), width=640)
    assert tuple(boxed[50, 115]) == CLASS_COLOURS["referee"]  # the box's top edge, halved: (100..130, 50)
    assert (boxed[80, 115] == 90).all()  # inside the box: untouched
    assert (boxed[180, 327] != 90).any() and (boxed[180, 320] == 90).all()  # the ball: a ring of radius 7 at (320, 180)
    assert (boxed[180, 300] == 90).all()
    # coordinates given for another native size are scaled
    small = draw_frame(raw, H_INV, native_size=(640, 360), width=640)
    assert ((small != plain).any(axis=2) == mask).all()


def test_draw_frame_survives_a_degenerate_homography():
    raw = np.full((360, 640, 3), 90, np.uint8)
    for bad in ([0.0] * 9, [float("nan")] * 9, [1.0, 2.0]):
        assert (draw_frame(raw, bad) == 90).all()


def test_positions_drawing_puts_dots_where_the_pitch_is():
    empty = draw_positions(np.zeros((0, 2)), [(255, 0, 0)])
    img = draw_positions(np.array([[0.0, 0.0], [-52.5, 34.0], [np.nan, 1.0]]), [(255, 0, 0)])
    assert empty.shape == img.shape == (round(78 * 5), round(115 * 5), 3)
    diff = (img != empty).any(axis=2)
    h, w = img.shape[:2]
    assert diff[h // 2, w // 2] and tuple(img[h // 2, w // 2]) == (255, 0, 0)  # the centre spot
    assert diff[h // 2 + 170, w // 2 - 262]  # the near left corner, 5 px per metre
    assert diff.sum() < 200  # two small dots, the NaN one left out


def _near(a, b, tol: int = 40) -> bool:
    return int(np.abs(np.asarray(a, int) - np.asarray(b, int)).sum()) <= tol


def test_trajectories_are_drawn_at_the_tracks_pitch_positions():
    empty = draw_trajectories([], [])
    assert empty.shape == draw_positions(np.zeros((0, 2)), [(0, 0, 0)]).shape
    h, w = empty.shape[:2]
    px = lambda x, y: (int(round(w / 2 + 5 * x)), int(round(h / 2 + 5 * y)))  # noqa: E731  5 px per metre
    red, blue, ref = GROUP_COLOURS[0], GROUP_COLOURS[1], CLASS_COLOURS["referee"]
    paths = [np.array([[-30.0, -20.0], [-20.0, -20.0], [np.nan, 0.0], [-10.0, -20.0]]),  # a player of team 0
             np.array([[44.0, 3.0], [46.0, 6.0]]),  # the goalkeeper of team 1
             np.array([[10.0, 25.0], [15.0, 25.0]])]  # the referee
    img = draw_trajectories(paths, [red, blue, ref], ["player", "goalkeeper", "referee"], thickness=2)
    diff = (img != empty).any(axis=2)
    for x in (-28.0, -25.0, -15.0, -11.0):  # along the player's line (the NaN point left out)
        u, v = px(x, -20.0)
        assert _near(img[v, u], red), (x, img[v, u])
    u, v = px(-10.0, -20.0)
    assert tuple(img[v, u]) == red and (diff[v - 3:v + 4, u - 3:u + 4]).sum() > 20  # the dot where it ends
    u, v = px(46.0, 6.0)
    assert tuple(img[v, u]) == blue and tuple(img[v, u + 4]) == (255, 255, 255)  # the goalkeeper's ringed square
    u, v = px(45.0, 4.5)
    assert _near(img[v, u], blue, 80)  # its line, between its two points
    u, v = px(12.5, 25.0)
    assert _near(img[v, u], ref)
    u, v = px(15.0, 25.0)
    assert (img[v - 6:v + 7, u - 6:u + 7] == ref).all(axis=2).sum() >= 10  # the referee's diamond
    # nothing far from the paths
    keep = np.zeros_like(diff)
    for path in paths:
        ok = path[np.isfinite(path).all(axis=1)]
        (u0, v0), (u1, v1) = px(*ok.min(axis=0)), px(*ok.max(axis=0))
        keep[v0 - 7:v1 + 8, u0 - 7:u1 + 8] = True
    assert diff.sum() > 150 and not (diff & ~keep).any()


def test_crop_strip_takes_each_box_from_its_own_frame():
    cols = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]
    boxes = np.array([[40.0, 40.0, 80.0, 120.0], [200.0, 100.0, 240.0, 180.0], [300.0, 20.0, 340.0, 100.0]])
    images = []
    for j in range(3):  # 200x120 decoded frames of a 400x240 video: every box painted, grey in the others' frames
        img = np.full((120, 200, 3), 30, np.uint8)
        for i, b in enumerate(boxes):
            x1, y1, x2, y2 = (b / 2).astype(int)
            img[y1:y2, x1:x2] = cols[j] if i == j else (128, 128, 128)
        images.append(img)
    strip = crop_strip(images + [None], boxes.tolist() + [[0.0, 0.0, 10.0, 10.0]],
                       native_sizes=[(400, 240)] * 4, tile=(80, 40), gap=2)
    assert strip.shape == (80, 4 * 42 - 2, 3)
    for j in range(3):
        tile = strip[:, j * 42:j * 42 + 40]
        assert tuple(tile[40, 20]) == cols[j]  # its own box, from its own frame
        assert (tile == cols[j]).all(axis=2).sum() > 0.5 * 80 * 40 * 0.5  # the box fills the tile's middle
        assert not (tile == (128, 128, 128)).all(axis=2).any()  # no other box
    assert (strip[:, 3 * 42:] == 235).all() and (strip[:, 40:42] == 255).all()  # no image: blank; gaps white
    assert spread(20, 6) == [0, 4, 8, 11, 15, 19] and spread(3, 8) == [0, 1, 2] and spread(0, 4) == []


def test_minute_paths_and_longest_tracks_from_the_tables():
    import pandas as pd

    # half 1: minute 0 has tracks 0, 1; minute 1 tracks 0, 1, 2 (and 3 without a position); minute 2 track 0
    rows = pd.DataFrame({
        "frame": [0, 0, 10, 10, 12, 12, 11, 20], "t": [5.0, 5.0, 65.0, 65.0, 70.0, 70.0, 66.0, 130.0],
        "track": [0, 1, 0, 1, 2, 3, 0, 0], "pitch_x": [1.0, 2.0, 3.0, 4.0, 5.0, None, 3.5, 6.0],
        "pitch_y": [0.0] * 8, "x1": [1.0] * 8, "y1": [1.0] * 8, "x2": [2.0] * 8, "y2": [3.0] * 8})
    minute, counts = pick_minute(rows)
    assert minute == 1 and counts == {0: 2, 1: 3, 2: 1}
    assert pick_minute(rows, 2) == (2, counts) and pick_minute(rows.iloc[:0]) == (None, {})
    paths = track_paths(rows[rows.t // 60 == 1])
    assert sorted(paths) == [0, 1, 2] and paths[0][:, 0].tolist() == [3.0, 3.5]  # in frame order
    assert longest_tracks(rows, None, 2) == [0, 1]  # 4 and 2 rows
    tracks = pd.DataFrame({"half": [1] * 4, "track": [0, 1, 2, 3], "frames": [4, 2, 9, 1]})
    assert longest_tracks(rows, tracks, 3) == [2, 0, 1]
    # teams of rows: players.team, else tracks.team through (half, track)
    p = pd.DataFrame({"half": [1, 1, 1, 2], "track": [0, 1, None, 1], "team": [1, None, None, None]})
    t = pd.DataFrame({"half": [1, 1], "track": [0, 1], "team": [0, 0]})
    got = team_of_rows(p, t).tolist()
    assert got[:2] == [1.0, 0.0] and np.isnan(got[2:]).all()


def test_topview_strip_spreads_over_the_half():
    arr = np.zeros((10, 224, 224, 3), np.uint8)
    for i in range(10):
        arr[i] = i * 20
    strip, idx = topview_strip(arr, n=4, gap=4)
    assert idx == [0, 3, 6, 9] and strip.shape == (224, 4 * 228 - 4, 3)
    assert strip[0, 0, 0] == 0 and strip[0, 228 * 3, 0] == 180 and (strip[:, 224:228] == 255).all()
    assert topview_strip(np.zeros((0, 224, 224, 3), np.uint8)) is None
    assert topview_strip(np.zeros((5, 3, 224, 224), np.uint8)) is None


# ------------------------------------------------------------------------------------------- summaries
def test_counts_equal_the_tables(run):
    from matchflow.storage.query import connect

    data = load_game(run["layout"], run["gid"], run["manifest"])
    counts = game_counts(data)
    db = connect(str(run["out"]))
    one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    assert counts["frames"] == one("SELECT count(*) FROM frames") == run["n"]
    assert counts["players"] == one("SELECT count(*) FROM players") == 6 * run["n"]
    assert counts["ball_frames"] == one("SELECT count(DISTINCT frame) FROM ball") == 3
    assert counts["ball_share"] == pytest.approx(3 / run["n"])
    assert counts["calibration_valid"] == one("SELECT count(*) FROM calibration WHERE valid") == run["n"] - 1
    assert counts["calibration_valid_share"] == pytest.approx((run["n"] - 1) / run["n"])
    assert counts["on_field"] == one("SELECT count(*) FROM players WHERE on_field") == 5 * run["n"]
    assert counts["positions"] == 6 * run["n"] and counts["graph_edges"] is None and counts["halves"] == [1]


def test_kit_groups_split_the_two_kits(run):
    data = load_game(run["layout"], run["gid"], run["manifest"])
    p = data.tables["players"]
    labels, colours, how = kit_groups(p)
    assert how == "kit colour k-means" and len(colours) == 2
    on_red = ((p.color_r == RED[0]) & p.on_field.astype(bool)).to_numpy()
    on_blue = (p.color_b == BLUE[2]).to_numpy()
    assert len(set(labels[on_red])) == 1 and len(set(labels[on_blue])) == 1 and labels[on_red][0] != labels[on_blue][0]
    assert (labels[(p.cls == "referee").to_numpy()] == -1).all()  # referees are no team
    assert (labels[~p.on_field.astype(bool).to_numpy()] == -1).all()
    assert np.allclose(colours[labels[on_blue][0]], BLUE, atol=1) and np.allclose(colours[labels[on_red][0]], RED, atol=1)
    # a team column wins over the colours
    p2 = p.assign(team=np.where(p.color_r == RED[0], 1, 0))
    labels2, _, how2 = kit_groups(p2)
    assert how2 == "team" and (labels2[(p2.team == 1).to_numpy()] == 1).all()
    # neither: no groups
    labels3, colours3, how3 = kit_groups(p.assign(color_r=None, color_g=None, color_b=None))
    assert how3 == "" and colours3 == [] and (labels3 == -1).all()


def test_pick_frames_spreads_and_prefers_valid_calibrations(run):
    data = load_game(run["layout"], run["gid"], run["manifest"])
    frames, cal = data.tables["frames"], data.tables["calibration"]
    picked = pick_frames(frames, cal, 2)
    assert list(picked.frame) == [1, 6]  # segments 0..3 and 4..7: their middles 2 and 6, but 2 is not valid
    picked = pick_frames(frames, None, 2)
    assert list(picked.frame) == [2, 6]
    assert list(pick_frames(frames, cal, 10).frame) == list(range(run["n"]))
    assert len(pick_frames(frames, cal, 0)) == 0 and len(pick_frames(frames.iloc[:0], cal, 4)) == 0


# ------------------------------------------------------------------------------------------- pages
def test_page_of_a_full_run(run, tmp_path):
    dest = build_report(str(run["out"]), str(tmp_path / "r" / "index.html"), credits="test credits")
    page = Path(dest).read_text()
    imgs = _imgs(page)
    # 4 frames + 1 top-view strip + 2 kit groups + 1 panel of referees/off-groups
    assert len(imgs) == 8, len(imgs)
    shapes = [cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), 1).shape for uri in imgs]
    assert [s[:2] for s in shapes[:4]] == [(360, 640)] * 4  # the frames first
    assert shapes[4][:2] == (224, 6 * 228 - 4)  # the top views: 6 of the 8 frames
    assert all(s[1] <= 1400 for s in shapes)
    assert run["key"] in page and "test credits" in page
    assert "VideoError: 1_720p.mkv: cannot decode frames 0..15 &lt;corrupt&gt;" in page  # failed game, escaped
    assert "kit colour" in page and "group A" in page and "group B" in page
    assert "calibration valid" in page and f"{run['n'] - 1} of {run['n']}" in page
    assert "detection" in page and "4.00" in page  # stage timings
    assert "not found" not in page and "could not" not in page


def test_page_with_a_missing_video_and_with_corpus(run, tmp_path):
    moved = tmp_path / "moved"
    shutil.move(str(run["corpus"]), str(moved))
    page = render_report(str(run["out"]))
    assert "video of half 1 not found" in page and "give --corpus" in page
    assert len(_imgs(page)) == 4  # top views and positions, no frames
    page = render_report(str(run["out"]), corpus=str(moved))
    assert "not found" not in page and len(_imgs(page)) == 8
    page = render_report(str(run["out"]), corpus=str(tmp_path / "nowhere"))
    assert "could not be listed" in page and "not found" in page
    # a video that is not a video
    run["video"].parent.mkdir(parents=True)
    run["video"].write_bytes(b"not a video")
    page = render_report(str(run["out"]))
    assert "could not be decoded" in page and len(_imgs(page)) == 4


def test_page_of_a_tracked_run(tracked_run, tmp_path):
    page = render_report(str(tracked_run["out"]))
    imgs = _imgs(page)
    # 4 frames + 1 top-view strip + 2 teams + 1 other positions + 1 trajectory drawing + 6 crop strips
    assert len(imgs) == 15, len(imgs)
    for text in ("<h3>Tracks</h3>", "Crops of the longest tracks", "Teams shown: from the teams stage",
                 "half 1, minute 0", "goalkeepers: 1", "referees: 1", "team 0 &middot; goalkeeper",
                 "no team &middot; referee", "tracks (people followed in a half)"):
        assert text in page, text
    assert "group A" not in page and "a guess" not in page and "could not" not in page and "not found" not in page
    decoded = [cv2.imdecode(np.frombuffer(base64.b64decode(u.split(",", 1)[1]), np.uint8), 1)[:, :, ::-1]
               for u in imgs]
    traj = decoded[8]
    h, w = traj.shape[:2]
    n = tracked_run["n"]
    for d, (_, _, x, y, _) in enumerate(PEOPLE[:4]):  # where each player's track ends: its team's colour
        x_end = x + n - 1
        u, v = int(round(w / 2 + 5 * x_end)), int(round(h / 2 + 5 * y))
        assert _near(traj[v, u], GROUP_COLOURS[TRACK_TEAMS[d]], 90), (d, traj[v, u])
    strips = decoded[9:]
    assert all(s.shape[:2] == (80, n * 42 - 2) for s in strips)  # 8 crops per track, one per sampled frame
    assert page.count("crops of frames " + ", ".join(str(f) for f in range(n))) == 6
    # another minute: none tracked there
    page = render_report(str(tracked_run["out"]), minute=3)
    assert "no tracked person with a pitch position in minute 3" in page and len(_imgs(page)) == 14
    # the video gone: the crops say so, the trajectories stay
    shutil.move(str(tracked_run["corpus"]), str(tmp_path / "moved"))
    page = render_report(str(tracked_run["out"]), crops_per_track=4)
    assert "no crops of half 1: video of half 1 not found" in page and len(_imgs(page)) == 5


def test_page_of_an_untracked_run_guesses_teams_from_kit_colours(run):
    page = render_report(str(run["out"]))
    assert "Teams shown: a guess, not the teams stage" in page and "group A" in page
    assert "no tracks: players.track is all null (stage tracking not run)" in page
    assert "Crops of the longest tracks" not in page and len(_imgs(page)) == 8


def test_page_of_a_frames_only_run_and_of_an_empty_root(tmp_path):
    r = make_run(tmp_path, stages=("frames",))
    page = render_report(str(r["out"]))
    assert len(_imgs(page)) == 4  # the raw frames
    for missing in ("no calibration table", "stage detection not run", "no topview_cc array",
                    "no positions: no players table", "stages not in this run: calibration, detection"):
        assert missing in page, missing
    r2 = make_run(tmp_path / "b", stages=("frames", "calibration", "detection"))
    page = render_report(str(r2["out"]))
    assert "pitch_x/pitch_y are all null" in page and len(_imgs(page)) == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no manifests under this output root" in render_report(str(empty))


def test_page_of_an_s3_output_root(tmp_path, s3_endpoint):
    """Output root, corpus and page on S3 (a moto server): the same page as from the local copy."""
    import s3fs

    r = make_run(tmp_path)
    s3 = s3fs.S3FileSystem()
    s3.mkdir("report-bucket")
    s3.put(str(r["out"]), "report-bucket/out", recursive=True)
    s3.put(str(r["corpus"]), "report-bucket/corpus", recursive=True)
    shutil.rmtree(r["corpus"])  # the manifest's local video path is gone: the videos come from --corpus on S3
    dest = build_report("s3://report-bucket/out", "s3://report-bucket/pages/index.html",
                        corpus="s3://report-bucket/corpus")
    page = s3.cat_file(dest.split("://", 1)[1]).decode()
    assert len(_imgs(page)) == 8 and "not found" not in page and r["key"] in page


def test_cli_report_errors(tmp_path, capsys):
    from matchflow.cli import main

    assert main(["report", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- browser
def chromium_check(page: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` in headless Chromium; returns the image facts the page's script wrote into the DOM."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: run `make browser` (as root it installs Debian's chromium "
                    "package: apt-get install -y --no-install-recommends chromium)")
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={page.parent / '.chromium'}"]
    dom = subprocess.run(base + ["--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    checked = re.search(r'data-images-checked="(\d+)"', body.group(1))
    broken = re.search(r'data-images-broken="(\d+)"', body.group(1))
    assert checked and broken, f"the page's load script did not run: {body.group(0)}"
    widths = [int(w) for w in re.findall(r'<img[^>]*data-natural-width="(\d+)"', dom.stdout)]
    facts = {"imgs": len(re.findall(r"<img ", dom.stdout)), "checked": int(checked.group(1)),
             "broken": int(broken.group(1)), "widths": widths}
    if screenshot is not None:
        shot = subprocess.run(base + ["--window-size=1280,2000", f"--screenshot={screenshot}", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120)
        assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    return facts


def test_page_renders_in_chromium(run, tmp_path):
    dest = Path(build_report(str(run["out"]), str(tmp_path / "page" / "index.html")))
    facts = chromium_check(dest, tmp_path / "shot.png")
    assert facts["imgs"] == facts["checked"] == len(facts["widths"]) == 8
    assert facts["broken"] == 0 and all(w > 0 for w in facts["widths"])
    assert 640 in facts["widths"]  # the frames
    shot = cv2.imread(str(tmp_path / "shot.png"))
    assert shot is not None and shot.shape[1] == 1280 and shot.std() > 10


# ------------------------------------------------------------------------------------------- real flow
@pytest.mark.e2e
def test_flow_then_report_through_the_cli(tmp_path, prefect_api):
    from matchflow.cli import main
    from matchflow.config import PipelineConfig
    from matchflow.flows.corpus import run_corpus
    from matchflow.stages.registry import available
    from matchflow.synth import synthesize_corpus

    corpus, out = tmp_path / "corpus", tmp_path / "out"
    synthesize_corpus(corpus, games=1, halves=1, seconds=4.0, seed=3, width=640, height=360)
    stages = ["frames", "calibration", "detection"]
    stages += [s for s in ("localization", "graph", "topview") if s in available()]
    stages += ["tracking", "teams"]  # the report's trajectories and crop strips from the real stages' output
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=4, retries=0, memory_limit="3GiB", stages=stages,
                         stage_params={"tracking": {"appearance": "colour"}, "teams": {"appearance": "colour"}})
    summary = run_corpus(str(corpus), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    html_path = tmp_path / "report" / "index.html"
    assert main(["report", str(out), "--html", str(html_path), "--minute", "0", "--tracks-per-half", "2"]) == 0
    page = html_path.read_text()
    assert "Teams shown: from the teams stage" in page
    assert "half 1, minute 0 (0:00" in page and "<h3>Crops of the longest tracks</h3>" in page
    assert "The 2 tracks of each half with the most detections" in page
    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["game"] in page
    assert len(_imgs(page)) >= 4  # four frames of the half at least
    assert "not found" not in page and "could not" not in page
    for stage in stages:
        assert stage in page
    facts = chromium_check(html_path)
    assert facts["broken"] == 0 and facts["imgs"] == facts["checked"] >= 4
    # the default destination is <out>/report.html
    assert main(["report", str(out)]) == 0 and (out / "report.html").exists()

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from matchflow import cli
from matchflow.exports import (
    EmptyExport,
    ExportError,
    committed_games,
    export,
    export_gsr,
    export_kloppy,
    export_mot,
    export_soccernet_ccbv,
    gsr_image_id,
    gsr_side,
    sampling_rate,
)
from matchflow.models.geometry.camera import apply_homography
from matchflow.models.geometry.camera_prior import load_camera_prior
from matchflow.storage import manifest
from matchflow.storage.corpus import game_id
from matchflow.storage.layout import OutputLayout
from matchflow.storage.soccernet import PLACEHOLDER_HOMOGRAPHY, read_ccbv
from matchflow.storage.tables import committed_dataset, write_part
from matchflow.video import sample_indices

SIZE = (1280, 720)
VIDEO_FRAMES = sample_indices(300, 25.0, 2.0)  # 2 fps from 25 fps video: steps of 12 and 13 frames in turn


def _t(frames):
    """Seconds from the start of the half of sampled frames (their video frame / 25)."""
    return VIDEO_FRAMES[np.asarray(frames, np.int64)] / 25.0

KEY_A = "league/season/game A"
KEY_B = "league/season/game B"  # frames only: no calibration, no players
KEY_C = "league/season/game C"  # failed: invisible


def _p2i(n, offset=0):
    prior = load_camera_prior()
    return [prior[k] / prior[k][2, 2] for k in sorted(prior)[offset : offset + n]]


def _frames(layout, gid, key, half, n):
    f = np.arange(n, dtype=np.int32)
    write_part(layout, "frames", gid, key, half, 0, {
        "frame": f, "t": _t(f), "video_frame": VIDEO_FRAMES[f].astype(np.int32),
        "width": np.full(n, SIZE[0], np.int32), "height": np.full(n, SIZE[1], np.int32)})


# half 1 of game A: 4 frames; frame 1 has an invalid calibration, frame 2 none at all
CAL = {  # frame -> (valid, score)
    1: {0: (True, 0.9), 1: (False, 0.2), 3: (True, 0.7)},
    2: {0: (True, 0.8), 1: (True, 0.6)},
}
# players: (frame, det, track, x1, y1, x2, y2, score, pitch_x, pitch_y, team)
PLAYERS = {
    1: [
        (0, 0, 3, 100.5, 200.25, 130.5, 280.0, 0.9, -10.5, 5.25, 0),
        (0, 1, 7, 400.0, 300.0, 425.0, 370.0, 0.8, 20.0, -30.0, 1),
        (0, 2, None, 600.0, 310.0, 620.0, 360.0, 0.5, 1.0, 2.0, None),  # untracked: left out
        (1, 0, 3, 101.0, 201.0, 131.0, 281.0, 0.9, None, None, 0),  # invalid calibration
        (2, 0, 7, 402.0, 302.0, 427.0, 372.0, 0.85, 21.0, -29.0, 1),  # no calibration row: must come out null
        (3, 0, 3, 104.0, 204.0, 134.0, 284.0, 0.95, -9.0, 0.0, 0),
        (3, 1, 7, 404.0, 304.0, 429.0, 374.0, None, 22.0, -28.5, 1),
    ],
    2: [
        (0, 0, 11, 50.0, 60.0, 70.0, 110.0, 0.7, 30.0, 12.0, 1),
        (1, 0, 11, 52.0, 61.0, 72.0, 112.0, 0.75, 31.0, 11.5, 1),
    ],
}
# tracks (the teams stage's half table): half -> (track, team, cls, jersey)
TRACKS = {1: [(3, 0, "player", "10"), (7, 1, "goalkeeper", None)], 2: [(11, 1, "player", None)]}
# ball: (frame, score, pitch_x, pitch_y)
BALL = {1: [(0, 0.9, 1.5, 2.5), (0, 0.3, -40.0, -20.0), (2, 0.8, 3.0, 4.0), (3, 0.7, 5.0, -6.0)], 2: [(1, 0.5, 7.0, 8.0)]}
NFRAMES = {1: 4, 2: 2}


def _write_game_a(layout):
    gid = game_id(KEY_A)
    cams = {1: _p2i(4), 2: _p2i(2, 10)}
    for half, n in NFRAMES.items():
        _frames(layout, gid, KEY_A, half, n)
        frames = sorted(CAL[half])
        p2i = np.array([cams[half][f] for f in frames])
        write_part(layout, "calibration", gid, KEY_A, half, 0, {
            "frame": np.array(frames, np.int32), "t": _t(frames),
            "homography": np.linalg.inv(p2i).reshape(-1, 9), "homography_inv": p2i.reshape(-1, 9),
            "score": np.array([CAL[half][f][1] for f in frames], np.float32),
            "valid": np.array([CAL[half][f][0] for f in frames])})
        rows = PLAYERS[half]
        col = lambda i, dt=np.float32: np.array([np.nan if r[i] is None else r[i] for r in rows], dt)  # noqa: E731
        write_part(layout, "players", gid, KEY_A, half, 0, {
            "frame": np.array([r[0] for r in rows], np.int32), "t": _t([r[0] for r in rows]),
            "det": np.array([r[1] for r in rows], np.int16), "track": [r[2] for r in rows],
            "x1": col(3), "y1": col(4), "x2": col(5), "y2": col(6), "score": col(7),
            "pitch_x": col(8), "pitch_y": col(9), "team": [r[10] for r in rows], "cls": ["player"] * len(rows)})
        tracks = TRACKS[half]
        write_part(layout, "tracks", gid, KEY_A, half, 0, {
            "track": np.array([t[0] for t in tracks], np.int32), "team": [t[1] for t in tracks],
            "cls": [t[2] for t in tracks], "jersey": [t[3] for t in tracks],
            "first_frame": np.zeros(len(tracks), np.int32), "last_frame": np.zeros(len(tracks), np.int32),
            "frames": np.ones(len(tracks), np.int32)})
        balls = BALL[half]
        write_part(layout, "ball", gid, KEY_A, half, 0, {
            "frame": np.array([b[0] for b in balls], np.int32), "t": _t([b[0] for b in balls]),
            "score": np.array([b[1] for b in balls], np.float32),
            "pitch_x": np.array([b[2] for b in balls], np.float32),
            "pitch_y": np.array([b[3] for b in balls], np.float32)})
    manifest.write_manifest(layout, gid, {"status": "committed", "game": KEY_A, "config": {"fps": 2.0}})
    return {h: np.linalg.inv(np.array(c)) for h, c in cams.items()}


@pytest.fixture()
def output(tmp_path):
    out = tmp_path / "out"
    layout = OutputLayout.at(str(out))
    i2p = _write_game_a(layout)
    _frames(layout, game_id(KEY_B), KEY_B, 1, 3)
    manifest.write_manifest(layout, game_id(KEY_B), {"status": "committed", "game": KEY_B})
    _frames(layout, game_id(KEY_C), KEY_C, 1, 3)
    manifest.write_manifest(layout, game_id(KEY_C), {"status": "failed", "game": KEY_C, "errors": ["boom"]})
    return out, i2p


def _snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def _player(half, frame, track):
    return next(r for r in PLAYERS[half] if r[0] == frame and r[2] == track)


def test_committed_games_selects_by_key_or_id(output):
    out, _ = output
    assert [g.key for g in committed_games(str(out))] == [KEY_A, KEY_B]
    assert [g.key for g in committed_games(str(out), game_id(KEY_A))] == [KEY_A]
    assert [g.game_id for g in committed_games(str(out), KEY_B)] == [game_id(KEY_B)]


def test_kloppy_export(output, tmp_path):
    out, _ = output
    before = _snapshot(out)
    dest = tmp_path / "kloppy"
    written = export_kloppy(str(out), str(dest), game=KEY_A)
    folder = dest / game_id(KEY_A)
    assert sorted(Path(p).name for p in written) == [
        "1_tracking.csv", "1_tracking.parquet", "2_tracking.csv", "2_tracking.parquet", "metadata.json",
        "secondspectrum_meta.xml", "secondspectrum_tracking.jsonl"]
    assert all(Path(p).parent == folder for p in written)
    assert _snapshot(out) == before  # OUT untouched

    t1 = pq.read_table(folder / "1_tracking.parquet")
    assert t1.column_names == ["period_id", "frame_id", "timestamp", "ball_x", "ball_y", "3_x", "3_y", "7_x", "7_y"]
    df = t1.to_pandas()
    assert df["period_id"].tolist() == [1] * 4 and df["frame_id"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(df["timestamp"], _t(range(4)))
    # y is the negative of pitch_y; x as is
    for frame, track in [(0, 3), (0, 7), (3, 3), (3, 7)]:
        r = _player(1, frame, track)
        assert df.loc[frame, f"{track}_x"] == np.float32(r[8])
        assert df.loc[frame, f"{track}_y"] == -np.float32(r[9])
    # frame 1: invalid calibration, frame 2: no calibration row -> every coordinate null (even a given pitch_y)
    coords = [c for c in t1.column_names if c.endswith(("_x", "_y"))]
    for frame in (1, 2):
        assert all(t1.column(c)[frame].as_py() is None for c in coords), frame
    # ball: the highest-score row, flipped
    assert (df.loc[0, "ball_x"], df.loc[0, "ball_y"]) == (1.5, -2.5)
    assert (df.loc[3, "ball_x"], df.loc[3, "ball_y"]) == (5.0, 6.0)

    t2 = pq.read_table(folder / "2_tracking.parquet").to_pandas()
    assert list(t2.columns) == ["period_id", "frame_id", "timestamp", "ball_x", "ball_y", "11_x", "11_y"]
    assert t2["11_y"].tolist() == [-12.0, -11.5] and t2["period_id"].tolist() == [2, 2]
    assert np.isnan(t2.loc[0, "ball_x"]) and t2.loc[1, "ball_y"] == -8.0

    csv = pd.read_csv(folder / "1_tracking.csv")
    assert list(csv.columns) == t1.column_names
    pd.testing.assert_frame_equal(csv, df, check_dtype=False)

    meta = json.loads((folder / "metadata.json").read_text())
    cs = meta["coordinate_system"]
    assert cs["y_flipped"] is True and "y = -pitch_y" in cs["flip"] and "up" in cs["y"]
    assert cs["units"] == "metres" and cs["origin"] == "centre spot"
    assert meta["game"] == KEY_A and meta["game_id"] == game_id(KEY_A)
    assert meta["pitch"]["length"] == 105.0 and meta["pitch"]["width"] == 68.0
    assert meta["frame_rate"] == 2.0  # the sampling rate, not the median step (0.48 / 0.52 s)
    p1 = meta["periods"][0]
    assert p1["frames"] == 4 and p1["tracks"] == [{"track": 3, "team": 0}, {"track": 7, "team": 1}]


def test_kloppy_loads_the_export(output, tmp_path):
    """kloppy itself reads the Second Spectrum files back: frame rate, periods, each frame's time, players by
    team and their positions in kloppy's Second Spectrum coordinate system (metres, centre origin, +y up)."""
    from kloppy import secondspectrum
    from kloppy.domain import Provider

    out, _ = output
    dest = tmp_path / "kloppy"
    res = subprocess.run([sys.executable, "-m", "matchflow.cli", "export", str(out), "--format", "kloppy", "--dest",
                          str(dest), "--game", KEY_A], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    folder = dest / game_id(KEY_A)
    ds = secondspectrum.load(meta_data=folder / "secondspectrum_meta.xml",
                             raw_data=folder / "secondspectrum_tracking.jsonl", coordinates="secondspectrum")
    assert ds.metadata.frame_rate == 2 and ds.metadata.provider == Provider.SECONDSPECTRUM
    assert ds.metadata.pitch_dimensions.x_dim.max == 52.5 and ds.metadata.pitch_dimensions.y_dim.max == 34.0
    assert [p.id for p in ds.metadata.periods] == [1, 2] and len(ds.frames) == 6
    for frame, want_t in zip(ds.frames, list(_t(range(4))) + list(_t(range(2)))):
        assert frame.timestamp.total_seconds() == pytest.approx(want_t, abs=1e-6)  # exact times, no drift
    home, away = ds.metadata.teams
    assert sorted(p.player_id for p in home.players) == ["1-3"]
    assert sorted(p.player_id for p in away.players) == ["1-7", "2-11"]
    f0 = ds.frames[0]
    by_id = {p.player_id: d.coordinates for p, d in f0.players_data.items()}
    r3, r7 = _player(1, 0, 3), _player(1, 0, 7)
    assert (by_id["1-3"].x, by_id["1-3"].y) == pytest.approx((r3[8], -r3[9]))
    assert (by_id["1-7"].x, by_id["1-7"].y) == pytest.approx((r7[8], -r7[9]))
    assert (f0.ball_coordinates.x, f0.ball_coordinates.y) == pytest.approx((1.5, -2.5))
    assert ds.frames[1].players_data == {} and ds.frames[1].ball_coordinates is None  # invalid calibration
    df = ds.to_df()
    assert len(df) == 6 and "1-3_x" in df.columns


def test_sampling_rate_is_the_runs_rate_not_the_median_step(output):
    out, _ = output
    games = {g.key: g for g in committed_games(str(out))}
    layout = OutputLayout.at(str(out))
    frames_b = committed_dataset(layout, "frames", {games[KEY_B].game_id: 0}).to_table()
    # game B's manifest names no fps: the mean rate of its timestamps (3 frames over 0.52 + 0.48 s)
    assert sampling_rate(frames_b, games[KEY_B].manifest) == pytest.approx(2.0)
    assert sampling_rate(frames_b, {"config": {"fps": 5.0}}) == 5.0


def test_ccbv_export_round_trips(output, tmp_path):
    out, i2p = output
    before = _snapshot(out)
    dest = tmp_path / "ccbv"
    written = export_soccernet_ccbv(str(out), str(dest), game=game_id(KEY_A))
    assert [Path(p).name for p in written] == ["1_field_calib_ccbv.json", "2_field_calib_ccbv.json"]
    assert _snapshot(out) == before
    for half, n in NFRAMES.items():
        calib = read_ccbv(dest / game_id(KEY_A) / f"{half}_field_calib_ccbv.json")
        assert len(calib) == n and calib.size == SIZE
        got = calib.image_to_pitch()
        for f in range(n):
            valid, score = CAL[half].get(f, (False, 0.0))
            if valid:
                want = i2p[half][f]
                np.testing.assert_allclose(got[f], want / want[2, 2], rtol=1e-9, atol=1e-12)
                assert calib.confidence[f] == pytest.approx(score, abs=1e-6)
            else:
                assert calib.confidence[f] == 0.0
                np.testing.assert_array_equal(calib.homographies[f], PLACEHOLDER_HOMOGRAPHY)


def test_mot_export_parses_back_to_the_boxes(output, tmp_path):
    out, _ = output
    before = _snapshot(out)
    dest = tmp_path / "mot"
    written = export_mot(str(out), str(dest), game=KEY_A)
    assert [Path(p).name for p in written] == ["1_mot.txt", "1_seqinfo.ini", "2_mot.txt", "2_seqinfo.ini"]
    assert _snapshot(out) == before
    for half in NFRAMES:
        lines = (dest / game_id(KEY_A) / f"{half}_mot.txt").read_text().splitlines()
        tracked = [r for r in PLAYERS[half] if r[2] is not None]
        assert len(lines) == len(tracked)
        keys = []
        for line in lines:
            v = line.split(",")
            assert len(v) == 10 and v[7:] == ["-1", "-1", "-1"]
            frame, track = int(v[0]), int(v[1])
            keys.append((frame, track))
            r = _player(half, frame - 1, track)  # 1-based frames
            left, top, w, h, conf = (np.float32(x) for x in v[2:7])
            assert (left, top) == (np.float32(r[3]), np.float32(r[4]))
            assert w == pytest.approx(r[5] - r[3]) and h == pytest.approx(r[6] - r[4])
            assert conf == pytest.approx(1.0 if r[7] is None else r[7])
        assert keys == sorted(keys)


def test_trackeval_reads_the_mot_export(output, tmp_path):
    """TrackEval's MOT Challenge reader takes the export folder as a tracker's output (one sequence per half,
    with its seqinfo.ini); scored against ground truth written from the test's own boxes, it matches them all."""
    import contextlib
    import io
    import shutil

    with contextlib.redirect_stdout(io.StringIO()):  # TrackEval says which optional datasets it cannot import
        import trackeval

    out, _ = output
    dest = tmp_path / "mot"
    res = subprocess.run([sys.executable, "-m", "matchflow.cli", "export", str(out), "--format", "mot", "--dest",
                          str(dest), "--game", KEY_A], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    gt = tmp_path / "gt"
    for half in NFRAMES:
        seq = gt / f"{half}_mot"
        (seq / "gt").mkdir(parents=True)
        shutil.copy(dest / game_id(KEY_A) / f"{half}_seqinfo.ini", seq / "seqinfo.ini")
        rows = sorted((r[0] + 1, r[2], r[3], r[4], r[5] - r[3], r[6] - r[4]) for r in PLAYERS[half] if r[2] is not None)
        (seq / "gt" / "gt.txt").write_text("".join(",".join(map(str, r)) + ",1,1,1\n" for r in rows))
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                     "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                                     "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True, "PRINT_ONLY_COMBINED": True})
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(gt), "TRACKERS_FOLDER": str(dest), "TRACKERS_TO_EVAL": [game_id(KEY_A)],
        "TRACKER_SUB_FOLDER": "", "SKIP_SPLIT_FOL": True, "SEQ_INFO": {f"{h}_mot": None for h in NFRAMES},
        "OUTPUT_FOLDER": str(tmp_path / "eval"), "PRINT_CONFIG": False})
    raw = dataset.get_raw_seq_data(game_id(KEY_A), "1_mot")
    assert raw["num_timesteps"] == NFRAMES[1]
    assert sum(len(ids) for ids in raw["tracker_ids"]) == sum(r[2] is not None for r in PLAYERS[1])
    with contextlib.redirect_stdout(io.StringIO()):
        results, _ = evaluator.evaluate([dataset], [trackeval.metrics.HOTA(), trackeval.metrics.Identity()])
    combined = results["MotChallenge2DBox"][game_id(KEY_A)]["COMBINED_SEQ"]["pedestrian"]
    assert combined["HOTA"]["HOTA(0)"] == pytest.approx(1.0)
    assert combined["Identity"]["IDF1"] == pytest.approx(1.0)


def test_gsr_export(output, tmp_path):
    """One Labels-GameState.json per half: every sampled frame an image, every tracked person of a validly
    calibrated frame an annotation whose box, pitch point, track, role and team side read back."""
    import shutil

    out, i2p = output
    before = _snapshot(out)
    dest = tmp_path / "gsr"
    written = export_gsr(str(out), str(dest), game=KEY_A)
    folder = dest / game_id(KEY_A)
    assert written == [str(folder / "1" / "Labels-GameState.json"), str(folder / "2" / "Labels-GameState.json")]
    assert _snapshot(out) == before
    # team sides: team 0 attacks +x (defends the left goal) in half 1 and swaps ends at half time
    assert [gsr_side(0, 1), gsr_side(1, 1), gsr_side(0, 2), gsr_side(1, 2), gsr_side(None, 1)] == [
        "left", "right", "right", "left", None]
    tracks = {h: {t[0]: t for t in rows} for h, rows in TRACKS.items()}
    for half, n in NFRAMES.items():
        doc = json.loads((folder / str(half) / "Labels-GameState.json").read_text())
        assert set(doc) == {"info", "images", "annotations", "categories"}
        info = doc["info"]
        assert (info["half"], info["game"], info["game_id"], info["seq_length"]) == (half, KEY_A, game_id(KEY_A), n)
        assert info["frame_rate"] == 2.0 and info["version"] == "1.3" and info["im_dir"] == "img1"
        assert {c["name"]: c["id"] for c in doc["categories"]} == {"player": 1, "goalkeeper": 2, "referee": 3,
                                                                    "other": 7}
        assert all(c["supercategory"] == "object" for c in doc["categories"])
        # images: every sampled frame in order, named by its 1-based video frame; pitch labelled where calibrated
        images = doc["images"]
        ids = [gsr_image_id(half, int(VIDEO_FRAMES[f])) for f in range(n)]
        assert [im["image_id"] for im in images] == ids and len(set(ids)) == n and all(len(i) == 10 for i in ids)
        assert ids[0] == f"{half}000000001"  # video frame 0: frame number 1, as SoccerNet numbers frames
        assert [im["file_name"] for im in images] == [f"{VIDEO_FRAMES[f] + 1:06d}.jpg" for f in range(n)]
        assert all((im["width"], im["height"]) == SIZE and im["is_labeled"] and im["has_labeled_person"]
                   for im in images)
        calibrated = [CAL[half].get(f, (False, 0))[0] for f in range(n)]
        assert [im["has_labeled_pitch"] for im in images] == calibrated
        assert [im["has_labeled_camera"] for im in images] == calibrated
        # annotations: tracked rows of validly calibrated frames with a pitch position, by frame then track
        want = [r for r in PLAYERS[half] if r[2] is not None and calibrated[r[0]] and r[8] is not None]
        anns = doc["annotations"]
        assert [(a["image_id"], a["track_id"]) for a in anns] == [(ids[r[0]], r[2]) for r in want]
        assert len({a["id"] for a in anns}) == len(anns)
        assert info["num_tracklets"] == len({r[2] for r in want})
        for a, r in zip(anns, want):
            frame, det, track, x1, y1, x2, y2 = r[:7]
            assert a["id"] == f"{ids[frame]}{det:05d}" and a["supercategory"] == "object"
            box = a["bbox_image"]
            assert (box["x"], box["y"]) == (x1, y1)
            assert (box["w"], box["h"]) == pytest.approx((x2 - x1, y2 - y1))
            assert (box["x_center"], box["y_center"]) == pytest.approx(((x1 + x2) / 2, (y1 + y2) / 2))
            pitch = a["bbox_pitch"]
            assert (np.float32(pitch["x_bottom_middle"]), np.float32(pitch["y_bottom_middle"])) == (
                np.float32(r[8]), np.float32(r[9]))  # SoccerNet's pitch frame, as the tables: y not flipped
            corners, w = apply_homography(i2p[half][frame], np.array([[x1, y2], [x2, y2]]))
            assert np.all(np.abs(w) > 1e-9)
            got = [[pitch["x_bottom_left"], pitch["y_bottom_left"]], [pitch["x_bottom_right"], pitch["y_bottom_right"]]]
            np.testing.assert_allclose(got, corners, rtol=1e-5, atol=1e-4)
            _, team, role, jersey = tracks[half][track]
            assert a["category_id"] == {"player": 1, "goalkeeper": 2}[role]
            assert a["attributes"] == {"role": role, "team": gsr_side(team, half), "jersey": jersey}
    # half 2: team 1 has changed ends, it is the left team
    doc2 = json.loads((folder / "2" / "Labels-GameState.json").read_text())
    assert {a["attributes"]["team"] for a in doc2["annotations"]} == {"left"}
    # the format needs the tracks table (tracking and teams stages) and says which table a game lacks
    with pytest.raises(ExportError, match="no 'calibration' table"):
        export_gsr(str(out), str(tmp_path / "b"), game=KEY_B)
    shutil.rmtree(out / "tables" / "tracks")
    with pytest.raises(ExportError, match=r"no 'tracks' table .*the gsr export needs the tables frames, calibration, "
                                          r"players, tracks"):
        export_gsr(str(out), str(tmp_path / "c"), game=KEY_A)
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_an_export_with_nothing_in_it_says_so_and_writes_nothing(output, tmp_path):
    out, _ = output
    layout = OutputLayout.at(str(out))
    key = "league/season/untracked"
    gid = game_id(key)
    _frames(layout, gid, key, 1, 3)
    write_part(layout, "players", gid, key, 1, 0, {
        "frame": np.array([0, 1], np.int32), "t": _t([0, 1]), "det": np.array([0, 0], np.int16), "track": [None, None],
        "x1": np.ones(2, np.float32), "y1": np.ones(2, np.float32), "x2": np.full(2, 9, np.float32),
        "y2": np.full(2, 9, np.float32), "score": np.ones(2, np.float32), "cls": ["player"] * 2})
    manifest.write_manifest(layout, gid, {"status": "committed", "game": key, "config": {"fps": 2.0}})
    dest = tmp_path / "dest"
    with pytest.raises(EmptyExport, match="nothing to export.*untracked.*no tracked box"):
        export_mot(str(out), str(dest), game=key)
    assert not dest.exists()
    written = export_mot(str(out), str(dest), game=key, allow_empty=True)
    assert [Path(p).name for p in written] == ["1_mot.txt", "1_seqinfo.ini"]
    assert (dest / gid / "1_mot.txt").read_text() == ""


def test_errors(output, tmp_path):
    out, _ = output
    dest = str(tmp_path / "dest")
    with pytest.raises(ExportError, match="does not exist"):
        export(str(tmp_path / "nope"), "mot", dest)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExportError, match="no committed game.*manifests"):
        export(str(empty), "kloppy", dest)
    with pytest.raises(ExportError, match="not a committed game"):
        export(str(out), "mot", dest, game="league/season/nope")
    with pytest.raises(ExportError, match="not a committed game"):
        export(str(out), "mot", dest, game=KEY_C)  # failed games are invisible
    # game B has frames only: each format names the missing table and its path
    gid_b = game_id(KEY_B)
    with pytest.raises(ExportError, match=rf"no 'calibration' table .*tables/calibration/game_id={gid_b}"):
        export_soccernet_ccbv(str(out), dest, game=KEY_B)
    with pytest.raises(ExportError, match="no 'players' table"):
        export_mot(str(out), dest, game=KEY_B)
    with pytest.raises(ExportError, match="no 'calibration' table"):
        export_kloppy(str(out), dest)  # all games: B fails the check before anything is written
    assert not os.path.exists(dest)
    with pytest.raises(ExportError, match="inside the output root"):
        export(str(out), "mot", str(out / "exports"), game=KEY_A)
    with pytest.raises(ExportError, match="unknown export format"):
        export(str(out), "csv", dest)


def test_cli_export(output, tmp_path, capsys):
    out, _ = output
    dest = tmp_path / "cli"
    assert cli.main(["export", str(out), "--format", "mot", "--dest", str(dest), "--game", KEY_A]) == 0
    printed = capsys.readouterr().out
    assert str(dest / game_id(KEY_A) / "1_mot.txt") in printed and "wrote 4 mot files" in printed
    assert (dest / game_id(KEY_A) / "2_mot.txt").exists()

    assert cli.main(["export", str(out), "--format", "soccernet-ccbv", "--dest", str(dest), "--game", KEY_B]) == 2
    assert "no 'calibration' table" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["export", str(empty), "--format", "kloppy", "--dest", str(dest)]) == 2
    assert "is not a Matchflow output root" in capsys.readouterr().err
    (empty / "manifests").mkdir()  # an output root without a committed game
    assert cli.main(["export", str(empty), "--format", "kloppy", "--dest", str(dest)]) == 2
    assert "no committed game" in capsys.readouterr().err

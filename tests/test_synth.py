"""Synthetic corpus: SoccerNet layout, decodable H.264 halves, consistent and deterministic ground truth."""

import hashlib
import json
import re
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from matchflow.models.geometry.camera import camera_from_homography
from matchflow.models.geometry.camera_prior import load_camera_prior, prior_names, prior_split
from matchflow.models.geometry.pitch import PitchModel
from matchflow.synth import synthesize_corpus
from matchflow.synth.cutaways import plan_cutaways
from matchflow.synth.director import pick_base_camera
from matchflow.synth.play import MAX_SPEED

SECONDS, FPS, WIDTH, HEIGHT, GOP = 2.0, 25, 640, 360, 10
FRAMES = int(round(SECONDS * FPS))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("synth")
    games = synthesize_corpus(out, games=1, halves=2, seconds=SECONDS, seed=7, fps=FPS, width=WIDTH, height=HEIGHT,
                              gop=GOP, workers=1)
    return out, games


def homographies(column: pd.Series) -> np.ndarray:
    return np.stack(column.to_numpy()).astype(float).reshape(-1, 3, 3)


def test_layout_is_a_soccernet_corpus(corpus):
    out, games = corpus
    assert len(games) == 1
    game = games[0]
    assert game.parent == out / "synthetic" / "2026-2027"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} - \d{2}-\d{2} .+ 0 - 0 .+", game.name)
    names = sorted(p.name for p in game.iterdir())
    assert names == sorted([
        "1_360p.mp4", "2_360p.mp4", "1_gt_frames.parquet", "1_gt_players.parquet", "2_gt_frames.parquet",
        "2_gt_players.parquet", "game.json",
    ])
    for half in (1, 2):  # the corpus lister's pattern finds the video and nothing else
        assert [p.name for p in game.glob(f"{half}_*") if p.suffix in (".mp4", ".mkv")] == [f"{half}_360p.mp4"]
    meta = json.loads((game / "game.json").read_text())
    assert meta["seed"] == 7 and meta["fps"] == FPS and [meta["width"], meta["height"]] == [WIDTH, HEIGHT]
    assert meta["home"]["name"] in game.name and meta["away"]["name"] in game.name
    assert meta["home"]["kit"]["shirt"] != meta["away"]["kit"]["shirt"]
    assert meta["generator_version"] and len(meta["halves"]) == 2
    assert meta["cameras"] == "all" and meta["cutaways"] == 0
    assert all(h["prior_split"] == prior_split(h["prior_camera"]) and h["cutaway_shots"] == [] for h in meta["halves"])


def test_videos_decode_to_the_expected_frames(corpus):
    _, (game,) = corpus
    for half in (1, 2):
        with av.open(str(game / f"{half}_360p.mp4")) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert stream.average_rate == FPS
            frames = list(container.decode(video=0))
        assert len(frames) == FRAMES
        assert (frames[0].width, frames[0].height) == (WIDTH, HEIGHT)
        assert frames[0].format.name == "yuv420p"
        assert [round(f.time * FPS) for f in frames] == list(range(FRAMES))
        assert [i for i, f in enumerate(frames) if f.key_frame] == list(range(0, FRAMES, GOP))


def test_frame_truth_is_consistent(corpus):
    _, (game,) = corpus
    meta = json.loads((game / "game.json").read_text())
    for half in (1, 2):
        frames = pd.read_parquet(game / f"{half}_gt_frames.parquet")
        assert frames["frame"].tolist() == list(range(FRAMES)) and str(frames["frame"].dtype) == "int32"
        assert (frames["shot"] == "main").all()
        assert np.allclose(frames["t"], frames["frame"] / FPS)
        h, h_inv = homographies(frames["homography"]), homographies(frames["homography_inv"])
        prod = h @ h_inv
        assert np.allclose(prod / prod[:, 2:3, 2:3], np.eye(3), atol=1e-9)
        assert ((frames["pitch_fraction"] > 0) & (frames["pitch_fraction"] <= 1)).all()
        # a broadcast camera on a tripod: fixed position, smooth pan, tilt and zoom, looking down at the pitch
        cam = np.array(meta["halves"][half - 1]["camera_position_meters"])
        assert 40 < cam[1] < 120 and cam[2] < -5
        for i in (0, FRAMES - 1):
            fitted = camera_from_homography(h_inv[i], (WIDTH, HEIGHT))
            assert fitted.position == pytest.approx(cam, abs=1e-3)
            assert fitted.focal_px == pytest.approx(frames.loc[i, "focal_length_px"], rel=1e-6)
        assert frames["tilt_degrees"].between(60, 89).all() and frames["roll_degrees"].abs().max() <= 1.0 + 1e-9
        assert frames["pan_degrees"].diff().abs().max() < 1.0
        assert frames["focal_length_px"].pct_change().abs().max() < 0.02
        visible = frames["ball_visible"].to_numpy()
        assert visible.any()
        assert frames.loc[~visible, ["ball_x", "ball_y"]].isna().all().all()
        seen = frames[visible]
        assert seen["ball_x"].between(0, WIDTH).all() and seen["ball_y"].between(0, HEIGHT).all()
        # the ray through the ball's pixel passes through the ball: on the grass, its centre is 0.11 m up
        rolling = seen[seen["ball_z"] > -0.12]
        assert len(rolling) > 0
        for row, hh in zip(rolling.itertuples(), homographies(rolling["homography"])):
            g = hh @ np.array([row.ball_x, row.ball_y, 1.0])
            ground = np.array([g[0] / g[2], g[1] / g[2], 0.0])
            s = 1.0 - row.ball_z / cam[2]
            at = cam + s * (ground - cam)
            assert at[:2] == pytest.approx([row.ball_pitch_x, row.ball_pitch_y], abs=0.02)


def test_player_truth_is_consistent(corpus):
    _, (game,) = corpus
    for half in (1, 2):
        players = pd.read_parquet(game / f"{half}_gt_players.parquet")
        frames = pd.read_parquet(game / f"{half}_gt_frames.parquet")
        floats = ("x1", "y1", "x2", "y2", "pitch_x", "pitch_y", "visible_fraction")
        assert {str(players[c].dtype) for c in floats} == {"float32"}
        assert str(players["person"].dtype) == "int16" and str(players["team"].dtype) == "int8"
        assert (players["x1"] >= 0).all() and (players["x2"] <= WIDTH).all()
        assert (players["y1"] >= 0).all() and (players["y2"] <= HEIGHT).all()
        assert (players["x2"] > players["x1"]).all() and (players["y2"] > players["y1"]).all()
        assert players["visible_fraction"].between(0, 1).all()
        # ids are stable: one team and role per person; two teams of 11 with a goalkeeper each, one referee
        per_person = players.groupby("person")[["team", "role"]].nunique()
        assert (per_person == 1).all().all()
        roster = players.drop_duplicates("person").set_index("person")
        assert set(roster["role"]) <= {"player", "goalkeeper", "referee"}
        assert (roster.loc[roster["role"] == "referee", "team"] == -1).all()
        assert roster.index.max() <= 22
        # nobody runs faster than 8 m/s
        track = players.sort_values(["person", "frame"])
        step = track.groupby("person")[["frame", "pitch_x", "pitch_y"]].diff().dropna()
        step = step[step["frame"] == 1]
        assert (np.hypot(step["pitch_x"], step["pitch_y"]) * FPS <= MAX_SPEED * 1.001).all()
        # the feet project to the bottom middle of the box
        whole = players[(players["visible_fraction"] > 0.999) & (players["x1"] > 0) & (players["y1"] > 0)
                        & (players["x2"] < WIDTH) & (players["y2"] < HEIGHT)]
        assert len(whole) > 50
        h_inv = homographies(frames.set_index("frame").loc[whole["frame"], "homography_inv"])
        q = np.einsum("nij,nj->ni", h_inv, np.column_stack([whole["pitch_x"], whole["pitch_y"], np.ones(len(whole))]))
        feet = q[:, :2] / q[:, 2:3]
        height = (whole["y2"] - whole["y1"]).to_numpy()
        dx = feet[:, 0] - 0.5 * (whole["x1"] + whole["x2"]).to_numpy()
        dy = feet[:, 1] - whole["y2"].to_numpy()
        # within a few pixels: a running figure reaches further forward (toes, lean) than back
        assert np.all(np.abs(dx) <= 2.0 + 0.1 * height)
        assert np.all((dy <= 1.5) & (dy >= -(2.0 + 0.1 * height)))
        assert np.median(np.abs(dx)) < 2.0 and np.median(np.abs(dy)) < 2.5


def test_frames_show_the_pitch_lines_of_the_truth(corpus):
    _, (game,) = corpus
    frames = pd.read_parquet(game / "1_gt_frames.parquet")
    with av.open(str(game / "1_360p.mp4")) as container:
        images = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    pitch = PitchModel()
    for i in (0, FRAMES // 2, FRAMES - 1):
        h_inv = np.asarray(frames.loc[i, "homography_inv"]).reshape(3, 3)
        lines = pitch.line_mask(h_inv, (WIDTH, HEIGHT), thickness_px=1) > 0
        near = cv2.dilate(lines.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        ring = near & ~cv2.dilate(lines.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        grey = cv2.cvtColor(images[i], cv2.COLOR_BGR2GRAY).astype(float)
        assert lines.sum() > 100
        assert grey[lines].mean() > grey[ring].mean() + 25


def test_same_seed_same_corpus(tmp_path):
    # in process and over a pool of worker processes: the same bytes
    digests = []
    for run, workers in (("a", 1), ("b", 2)):
        (game,) = synthesize_corpus(tmp_path / run, games=1, halves=2, seconds=0.4, seed=3, width=320, height=180,
                                    workers=workers)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(game.iterdir())})
    assert digests[0] == digests[1]
    assert {"1_180p.mp4", "2_180p.mp4", "1_gt_frames.parquet", "2_gt_players.parquet", "game.json"} <= set(digests[0])


def test_prior_split_is_stable_disjoint_and_holds_out_a_fifth():
    names = set(load_camera_prior())
    dictionary, heldout = prior_names("dictionary"), prior_names("heldout")
    assert set(dictionary).isdisjoint(heldout) and set(dictionary) | set(heldout) == names
    assert set(prior_names()) == set(prior_names("all")) == names
    assert {prior_split(n) for n in heldout} == {"heldout"} and {prior_split(n) for n in dictionary} == {"dictionary"}
    # a hash of the name: the same split in every process and on every machine
    assert len(heldout) == 42 and 0.15 < len(heldout) / len(names) < 0.25
    assert [prior_split(n) for n in ("1.jpg", "73.jpg", "46.jpg")] == ["dictionary", "heldout", "heldout"]
    for seed in range(5):
        assert pick_base_camera(np.random.default_rng(seed), "heldout").name in heldout
        assert pick_base_camera(np.random.default_rng(seed), "dictionary").name in dictionary
    with pytest.raises(ValueError):
        prior_names("test")


def test_cutaway_plan_takes_its_share_in_2_to_5_second_shots():
    frames, fps = 45 * 60 * 25, 25
    plan = plan_cutaways(np.random.default_rng(1), frames, fps, 0.15)
    assert plan == plan_cutaways(np.random.default_rng(1), frames, fps, 0.15)
    lengths = np.array([c.end - c.start for c in plan])
    assert lengths.sum() == round(0.15 * frames) and lengths.min() >= 2 * fps and lengths.max() <= 5 * fps
    assert all(a.end < b.start for a, b in zip(plan, plan[1:])) and plan[0].start > 0 and plan[-1].end <= frames
    kinds = [c.shot for c in plan]
    assert set(kinds) == {"closeup", "crowd"} and kinds.count("closeup") > kinds.count("crowd")
    assert plan_cutaways(np.random.default_rng(1), frames, fps, 0.0) == []


CUT_SECONDS, CUT_SIZE = 6.0, (320, 180)


@pytest.fixture(scope="module")
def cutaway_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth_cutaways")
    (game,) = synthesize_corpus(out, games=1, halves=2, seconds=CUT_SECONDS, seed=11, width=CUT_SIZE[0],
                                height=CUT_SIZE[1], cameras="heldout", cutaways=0.9, workers=1)
    return game


def test_heldout_corpus_films_with_heldout_cameras_only(cutaway_corpus):
    meta = json.loads((cutaway_corpus / "game.json").read_text())
    assert meta["cameras"] == "heldout"
    heldout = set(prior_names("heldout"))
    for half in meta["halves"]:
        assert half["prior_camera"] in heldout and half["prior_split"] == "heldout"


def test_cutaways_show_no_pitch_markings(cutaway_corpus):
    meta = json.loads((cutaway_corpus / "game.json").read_text())
    assert meta["cutaways"] == 0.9
    pitch = PitchModel()
    shots = []
    for half in (1, 2):
        frames = pd.read_parquet(cutaway_corpus / f"{half}_gt_frames.parquet")
        players = pd.read_parquet(cutaway_corpus / f"{half}_gt_players.parquet")
        cam = np.array(meta["halves"][half - 1]["camera_position_meters"])
        # the shots of the frames are the cut-aways of game.json, about 90% of the time
        expected = np.array(["main"] * len(frames), dtype=object)
        for cut in meta["halves"][half - 1]["cutaway_shots"]:
            expected[cut["start_frame"] : cut["end_frame"]] = cut["shot"]
            assert 2 * FPS <= cut["end_frame"] - cut["start_frame"] <= 5 * FPS
        assert frames["shot"].tolist() == expected.tolist()
        assert (frames["shot"] != "main").mean() == pytest.approx(0.9, abs=0.02)
        shots += frames["shot"].tolist()
        lines = np.array([(pitch.line_mask(np.asarray(h).reshape(3, 3), CUT_SIZE) > 0).sum()
                          for h in frames["homography_inv"]])
        main = (frames["shot"] == "main").to_numpy()
        assert lines[~main].max() == 0 and np.median(lines[main]) > 100
        # a real camera: the main camera's position, zoomed in on a player or aimed at the stands
        for i in np.flatnonzero(~main)[[0, -1]]:
            fitted = camera_from_homography(np.asarray(frames.loc[i, "homography_inv"]).reshape(3, 3), CUT_SIZE)
            assert fitted.position == pytest.approx(cam, abs=0.05)
        crowd = frames[frames["shot"] == "crowd"]
        assert (crowd["pitch_fraction"] < 0.01).all() and (crowd["tilt_degrees"] > 80).all()
        for cut in meta["halves"][half - 1]["cutaway_shots"]:
            if cut["shot"] == "closeup":  # the player fills a third to half of the frame height
                seen = players[(players["person"] == cut["person"]) & players["frame"].between(
                    cut["start_frame"], cut["end_frame"] - 1)]
                assert len(seen) == cut["end_frame"] - cut["start_frame"]
                tall = (seen["y2"] - seen["y1"]) / CUT_SIZE[1]
                assert tall.median() == pytest.approx(0.42, abs=0.12)
    assert {"main", "closeup", "crowd"} <= set(shots)

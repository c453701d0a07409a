"""Tracking and teams as plain functions, on the simulated play of a synthetic half (true identities, teams and
positions), sampled at 2 fps with detection noise, misses and camera cut-aways."""

from __future__ import annotations

import numpy as np
import pytest

from matchflow.models.tracking.kalman import PitchKalman
from matchflow.models.tracking.teams import assign_teams, team_appearance
from matchflow.models.tracking.tracker import (
    HalfDetections,
    TrackerParams,
    colour_features,
    people_distances,
    track_half,
)
from matchflow.synth.play import simulate_half
from matchflow.synth.stadium import random_teams

FPS = 25


@pytest.fixture(scope="module")
def play():
    rng = np.random.default_rng(1)
    teams = random_teams(rng)
    return simulate_half(rng, teams, FPS * 90, FPS, 1.0)


def _sample(play, *, miss: float, noise: float, cuts: bool, embeddings: float | None, seed: int = 2):
    """Detections of every person at 2 fps: pitch positions with ``noise`` metres of error, a share ``miss`` of
    them missed; with ``cuts``, a 2 s cut-away every 20 s (no calibration: no pitch positions, a new shot before
    and after it). Appearance: kit colours with noise, or per-person unit vectors with ``embeddings`` noise."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in ("frame", "t", "pid", "pitch", "rgb", "box", "shot", "role")}
    shot = 0
    for k, f in enumerate(range(0, play.frames, FPS // 2)):
        away = cuts and k % 40 in (30, 31, 32, 33)
        if cuts and k % 40 in (30, 34):
            shot += 1
        for i, person in enumerate(play.persons):
            if rng.random() < miss:
                continue
            xy = play.position[f, i] + rng.normal(0, noise, 2)
            rows["frame"].append(k)
            rows["t"].append(f / FPS)
            rows["pid"].append(i)
            rows["pitch"].append(np.full(2, np.nan) if away else xy)
            rows["rgb"].append(np.clip(np.array(person.kit.shirt[::-1], float) + rng.normal(0, 12, 3), 0, 255))
            # a close-up shows people big and elsewhere: boxes unrelated to the main camera's
            base = np.array([20.0 + 55 * i, 100.0]) if away else xy * [12, 6] + [640, 300]
            rows["box"].append([*base, *(base + ([50, 150] if away else [20, 50]))])
            rows["shot"].append(shot)
            rows["role"].append(person.role)
    pid = np.array(rows["pid"])
    if embeddings is None:
        app = colour_features(np.array(rows["rgb"]))
    else:
        e = np.random.default_rng(5).normal(size=(len(play.persons), 64))
        app = e[pid] / np.linalg.norm(e[pid], axis=1, keepdims=True) + rng.normal(0, embeddings / 8, (len(pid), 64))
        app /= np.linalg.norm(app, axis=1, keepdims=True)
    det = HalfDetections(np.array(rows["frame"]), np.array(rows["t"]), np.array(rows["box"], float),
                         np.array(rows["pitch"], float), app, np.array(rows["shot"]))
    return det, pid, np.array(rows["role"], dtype=object), TrackerParams(reid=embeddings is not None)


def _purity(ids: np.ndarray, pid: np.ndarray) -> float:
    """Share of detections whose track's majority person is theirs."""
    return sum(np.bincount(pid[ids == t]).max() for t in np.unique(ids)) / len(ids)


def _switches(ids: np.ndarray, pid: np.ndarray) -> int:
    return sum(int(np.sum(np.diff(ids[pid == i]) != 0)) for i in np.unique(pid))


def test_kalman_follows_a_running_player():
    kf = PitchKalman(np.array([0.0, 0.0]), 0.0, noise=0.1)
    for k in range(1, 8):
        kf.update(np.array([5.0 * 0.5 * k, 0.0]), 0.5 * k)  # 5 m/s along x
    mean, cov = kf.predict(4.5)
    assert abs(mean[0] - 22.5) < 0.3 and abs(mean[1]) < 0.1 and abs(kf.x[2] - 5.0) < 0.3
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_every_detection_gets_a_track_and_good_appearance_gives_one_track_per_player(play):
    det, pid, _, params = _sample(play, miss=0.1, noise=0.4, cuts=False, embeddings=0.7)
    ids = track_half(det, params)
    assert ids.dtype == np.int32 and np.all(ids >= 0)
    assert sorted(np.unique(ids)) == list(range(len(np.unique(ids))))  # 0, 1, 2, ... in order of appearance
    for f in np.unique(det.frame):  # one detection per track and frame
        assert len(np.unique(ids[det.frame == f])) == np.sum(det.frame == f)
    assert _purity(ids, pid) == 1.0 and _switches(ids, pid) == 0
    assert len(np.unique(ids)) == len(play.persons)


def test_kit_colours_alone_keep_most_detections_with_their_player(play):
    det, pid, _, params = _sample(play, miss=0.0, noise=0.1, cuts=False, embeddings=None)
    ids = track_half(det, params)
    assert _purity(ids, pid) > 0.9


@pytest.mark.parametrize("embeddings", [None, 0.7])
def test_a_camera_cut_never_merges_two_players(play, embeddings):
    det, pid, _, params = _sample(play, miss=0.05, noise=0.3, cuts=True, embeddings=embeddings)
    ids = track_half(det, params)
    away = np.isnan(det.pitch[:, 0])
    assert away.any() and len(np.unique(det.shot)) > 4
    for t in np.unique(ids):
        shots = np.unique(det.shot[ids == t])
        if len(shots) > 1:  # a track that crosses a cut holds one person only
            assert len(np.unique(pid[ids == t])) == 1, f"track {t} joins players across a cut"
    # in the close-ups, boxes are unrelated to those of the main camera: nothing is carried over by overlap
    assert _purity(ids[away], pid[away]) == 1.0


def test_embeddings_re_identify_players_after_a_cut_away(play):
    det, pid, _, params = _sample(play, miss=0.05, noise=0.3, cuts=True, embeddings=0.7)
    ids = track_half(det, params)
    assert _purity(ids, pid) == 1.0
    # most players keep their track through the cut-aways: far fewer tracks than one per player and shot
    assert len(np.unique(ids)) < 0.5 * len(play.persons) * len(np.unique(det.shot))


def test_appearance_scale_comes_from_people_of_the_same_frame(play):
    det, _, _, params = _sample(play, miss=0.0, noise=0.1, cuts=False, embeddings=0.7)
    low, median = people_distances(det, (0.01, 0.5))
    assert 0 < low < median < 2


def test_teams_split_the_kits_and_follow_the_direction_of_play(play):
    det, pid, role, params = _sample(play, miss=0.05, noise=0.3, cuts=False, embeddings=None)
    ids = track_half(det, params)
    truth = np.array([play.persons[i].team for i in pid])
    players = role == "player"
    for half in (1, 2):
        teams = assign_teams(ids, det.appearance, det.pitch[:, 0], np.ones(len(ids), bool), role, half)
        team = teams.of_rows(ids)
        # this play has team 0 attacking toward +x: in half 1 it is team 0, in half 2 (ends swapped) it is not
        expected = truth if half == 1 else 1 - truth
        assert np.mean(team[players] == expected[players]) > 0.97
        assert set(teams.role) <= {"player", "goalkeeper", "referee", "other"}
        referee_rows = role == "referee"
        assert np.mean(team[referee_rows] == -1) > 0.9


def test_people_off_the_field_have_no_team(play):
    det, pid, role, params = _sample(play, miss=0.0, noise=0.1, cuts=False, embeddings=None)
    ids = track_half(det, params)
    off = np.isin(pid, [3, 14])
    teams = assign_teams(ids, det.appearance, det.pitch[:, 0], ~off, role, 1)
    team = teams.of_rows(ids)
    assert np.all(team[off & (np.bincount(ids)[ids] > 5)] == -1)
    assert set(teams.role[np.isin(teams.track, ids[off])]) >= {"other"}


def _kit_colours(play, pid: np.ndarray, shirts: dict[int, tuple] | None = None) -> np.ndarray:
    """Kit-colour vectors of detections of persons ``pid``: their shirt (or ``shirts[person]``) with noise."""
    rng = np.random.default_rng(7)
    shirt = np.array([(shirts or {}).get(i, p.kit.shirt)[::-1] for i, p in enumerate(play.persons)], float)
    return colour_features(np.clip(shirt[pid] + rng.normal(0, 12, (len(pid), 3)), 0, 255))


def test_roles_from_kit_colours_and_place_with_reid_embeddings(play):
    """ReID embeddings tell people apart, not kits: third kits come from the kit colours, and a goalkeeper whose
    kit looks like his team's is found by his place, deepest in his penalty area. The detector's classes say
    nothing here (all 'player')."""
    det, pid, role, params = _sample(play, miss=0.05, noise=0.3, cuts=False, embeddings=0.7)
    ids = track_half(det, params)
    keepers = [i for i, p in enumerate(play.persons) if p.role == "goalkeeper"]
    look_alike = {keepers[0]: play.persons[1 if keepers[0] != 1 else 2].kit.shirt}  # a teammate's shirt
    for shirts in (None, look_alike):
        colour = _kit_colours(play, pid, shirts)
        teams = assign_teams(ids, det.appearance, det.pitch[:, 0], np.ones(len(ids), bool),
                             np.full(len(ids), "player", dtype=object), 1, colour=colour, pitch_y=det.pitch[:, 1],
                             frame=det.frame)
        got = teams.role[np.searchsorted(teams.track, ids)]
        for r in ("goalkeeper", "referee"):
            assert np.mean(got[role == r] == r) > 0.9, (r, shirts)
        assert np.mean(got[role == "player"] == "player") > 0.97
        # a goalkeeper joins the team that defends his goal; the referee has none
        team = teams.of_rows(ids)
        truth = np.array([play.persons[i].team for i in pid])
        assert np.mean(team[role == "goalkeeper"] == truth[role == "goalkeeper"]) > 0.9
        assert np.all(team[got == "referee"] == -1)
    # without the colours or the place, ReID embeddings alone do not find the goalkeepers
    alone = assign_teams(ids, det.appearance, det.pitch[:, 0], np.ones(len(ids), bool),
                         np.full(len(ids), "player", dtype=object), 1)
    assert np.mean(alone.role[np.searchsorted(alone.track, ids)][role == "goalkeeper"] == "goalkeeper") < 0.5


def test_the_detectors_class_names_a_referee_only_in_an_untypical_kit():
    """Two kits of 10 players (6 detections each) and two people the detector calls referee: one wears a kit
    a little off the nearest team's (within the third-kit threshold), one wears exactly a team's kit. The first
    is a referee, the second stays a player of that team."""
    rng = np.random.default_rng(0)
    kits = np.array([[200.0, 30, 30], [30, 30, 200]])
    rgb, track, cls = [], [], []
    for t in range(22):
        base = kits[t % 2] if t < 20 else (np.array([185.0, 45, 30]) if t == 20 else kits[1])
        rgb += list(base + rng.normal(0, 8, (6, 3)))
        track += [t] * 6
        cls += ["referee" if t >= 20 else "player"] * 6
    colour = colour_features(np.clip(rgb, 0, 255))
    track_ids = np.array(track)
    teams = assign_teams(track_ids, colour, np.full(len(track), np.nan), np.ones(len(track), bool),
                         np.array(cls, dtype=object), 1)
    assert teams.role[20] == "referee" and teams.team[20] == -1
    assert teams.role[21] == "player" and teams.team[21] == teams.team[1]
    assert set(teams.role[:20]) == {"player"}
    # the first one's kit is no third kit by colour alone: without the detector's word it is a player
    alone = assign_teams(track_ids, colour, np.full(len(track), np.nan), np.ones(len(track), bool),
                         np.full(len(track), "player", dtype=object), 1)
    assert alone.role[20] == "player"


def test_a_referee_in_the_last_third_is_no_goalkeeper():
    """Two kits of 10 players around midfield, a goalkeeper in green deepest in his penalty area and a referee in
    black following play in the last third (|x| about 38 m, never the deepest person in the box): the third kit
    deepest in the box is the goalkeeper of the team defending that goal, the other one the referee."""
    rng = np.random.default_rng(3)
    kits = np.array([[200.0, 30, 30], [30, 30, 200]])
    rgb, track, frame, x, y = [], [], [], [], []
    for f in range(6):
        for t in range(22):
            if t < 20:
                base, px, py = kits[t % 2], rng.uniform(-25, 15), rng.uniform(-30, 30)
            elif t == 20:  # goalkeeper, on his line
                base, px, py = np.array([40.0, 200, 40]), -50.0 + rng.normal(0, 1), rng.normal(0, 3)
            else:  # referee, in the last third
                base, px, py = np.array([20.0, 20, 20]), -38.0 + rng.normal(0, 2), rng.normal(0, 5)
            rgb.append(base + rng.normal(0, 8, 3))
            track.append(t)
            frame.append(f)
            x.append(px)
            y.append(py)
    colour = colour_features(np.clip(rgb, 0, 255))
    track_ids = np.array(track)
    teams = assign_teams(track_ids, colour, np.array(x), np.ones(len(track), bool),
                         np.full(len(track), "player", dtype=object), 1, pitch_y=np.array(y), frame=np.array(frame))
    assert teams.role[20] == "goalkeeper" and teams.role[21] == "referee"
    assert teams.team[21] == -1
    # team 0 defends x = -52.5 in the first half: the goalkeeper's; its outfield players stand lower on average
    assert teams.team[20] == 0
    assert set(teams.role[:20]) == {"player"}


def test_teams_split_on_embeddings_beside_kit_colours_when_embeddings_do_not_tell_kits(play):
    """Embeddings that tell people apart but not kits (every person a random direction): beside the kit colours
    the split follows the kits; alone it is arbitrary."""
    det, pid, role, _ = _sample(play, miss=0.05, noise=0.3, cuts=False, embeddings=0.1)
    colour = _sample(play, miss=0.05, noise=0.3, cuts=False, embeddings=None)[0].appearance
    truth = np.array([play.persons[i].team for i in pid])
    players = role == "player"
    on = np.ones(len(pid), bool)

    def accuracy(appearance: np.ndarray) -> float:
        team = assign_teams(pid, appearance, det.pitch[:, 0], on, role, 1, colour=colour).of_rows(pid)
        return float(np.mean(team[players] == truth[players]))

    assert accuracy(team_appearance(colour, det.appearance)) > 0.97
    assert accuracy(team_appearance(colour)) > 0.97
    alone = accuracy(det.appearance)
    assert alone < 0.9, alone

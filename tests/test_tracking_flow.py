"""The tracking and teams stages through the real flow on a synthetic game: every detection gets a track and
players a team, against the renderer's true identities and teams."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from matchflow.config import PipelineConfig
from matchflow.models.tracking.tracker import box_iou
from matchflow.stages.base import StageParamsError
from matchflow.stages.tracking import TrackingStage

STAGES = ["frames", "calibration", "detection", "localization", "reid", "tracking", "teams"]


def test_tracking_reads_reid_unless_told_to_use_colours():
    from matchflow.pipeline import PipelineError, build_pipeline

    assert "arrays/reid" in TrackingStage().reads
    assert "arrays/reid" not in TrackingStage({"appearance": "colour"}).reads
    with pytest.raises(StageParamsError, match=r"stage_params\.tracking\.appearance"):
        TrackingStage({"appearance": "siglip"})
    # without reid before it, the chain fails before any work, naming the stage that writes what it lacks
    with pytest.raises(PipelineError, match="reid"):
        build_pipeline(PipelineConfig(stages=["frames", "calibration", "detection", "localization", "tracking"]))
    build_pipeline(PipelineConfig(stages=["frames", "calibration", "detection", "localization", "tracking", "teams"],
                                  stage_params={"tracking": {"appearance": "colour"}, "teams": {"appearance": "colour"}}))


def test_gs_similarity_is_soccernets():
    """GS-HOTA's similarity: 1 at the same pitch point, 0.05 at 5 m (HOTA's lowest threshold), 0 when the role or
    the team side differs."""
    from matchflow.tracking_evaluation import gs_similarity

    gt = pd.DataFrame({"x": [0.0, 10.0, -20.0], "y": [0.0, 0.0, 5.0], "role": ["player", "player", "referee"],
                       "side": ["left", "right", ""]})
    ours = pd.DataFrame({"x": [0.0, 13.0, 10.0, -20.0], "y": [0.0, 4.0, 0.0, 5.0],
                         "role": ["player", "player", "goalkeeper", "referee"], "side": ["left", "right", "right", ""]})
    sim = gs_similarity(gt, ours)
    assert sim.shape == (3, 4)
    assert sim[0, 0] == 1.0 and sim[1, 1] == pytest.approx(0.05) and sim[2, 3] == 1.0
    assert sim[1, 2] == 0.0  # same point, another role
    assert sim[0, 1] == 0.0 and sim[1, 0] == 0.0  # another team side
    assert 0.05 < gs_similarity(gt.iloc[:1], ours.iloc[:1].assign(x=3.0))[0, 0] < 1.0
    assert gs_similarity(gt.iloc[:0], ours).shape == (0, 4)


def _truth_of(corpus, db) -> pd.DataFrame:
    """Our players rows with the true person and team of the box they overlap most (IoU >= 0.5), per half."""
    rows = db.execute("SELECT p.half, p.frame, p.det, p.x1, p.y1, p.x2, p.y2, p.track, p.team, f.video_frame "
                      "FROM players p JOIN frames f USING (game_id, half, frame) ORDER BY half, frame, det").df()
    game = next(corpus.rglob("game.json")).parent
    person, team = np.full(len(rows), -1), np.full(len(rows), -9)
    for half in rows.half.unique():
        gt = pd.read_parquet(game / f"{half}_gt_players.parquet")
        for vf, sel in rows[rows.half == half].groupby("video_frame").groups.items():
            g = gt[gt.frame == vf]
            if not len(g):
                continue
            iou = box_iou(rows.loc[sel, ["x1", "y1", "x2", "y2"]].to_numpy(float), g[["x1", "y1", "x2", "y2"]].to_numpy(float))
            best = iou.argmax(axis=1)
            ok = iou.max(axis=1) >= 0.5
            idx = np.asarray(sel)[ok]
            person[idx] = g.person.to_numpy()[best[ok]]
            team[idx] = g.team.to_numpy()[best[ok]]
    return rows.assign(person=person, true_team=team)


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, prefect_api):
    """One run of the flow with tracking and teams on a synthetic game of two 8 s halves, shared by the tests
    below: (corpus, output root)."""
    from matchflow.flows.corpus import run_corpus
    from matchflow.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("tracked")
    corpus = root / "corpus"
    synthesize_corpus(corpus, games=1, halves=2, seconds=8.0, seed=4, width=640, height=360)
    out = root / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="3GiB", stages=STAGES,
                         stage_params={"detection": {"input_height": 360}, "reid": {"model": "histogram"}})
    summary = run_corpus(str(corpus), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    assert summary.stage_seconds["tracking"] > 0 and summary.stage_seconds["teams"] > 0
    return corpus, out


@pytest.mark.e2e
def test_tracks_and_teams_through_the_flow(tracked_run, tmp_path):
    from matchflow.storage.query import connect

    corpus, out = tracked_run
    db = connect(str(out))
    rows = _truth_of(corpus, db)
    assert len(rows) > 100 and rows.track.notna().all()
    # the half table `tracks` summarises them: one row per track, its detections, frames, team
    tracks = db.execute("SELECT * FROM tracks ORDER BY half, track").df()
    per = rows.groupby(["half", "track"]).agg(n=("frame", "size"), first=("frame", "min"), last=("frame", "max"),
                                              team=("team", "first")).reset_index()
    assert len(tracks) == len(per)
    np.testing.assert_array_equal(tracks[["half", "track", "frames", "first_frame", "last_frame"]].to_numpy(),
                                  per[["half", "track", "n", "first", "last"]].to_numpy())
    np.testing.assert_array_equal(tracks.team.fillna(-1).to_numpy(), per.team.fillna(-1).to_numpy())
    assert set(tracks.cls.astype(str)) <= {"player", "goalkeeper", "referee", "other"}
    assert tracks.pitch_x.notna().mean() > 0.5
    for _, h in rows.groupby("half"):
        # one detection per track and frame; tracks numbered 0.. within the half
        assert not h.duplicated(["frame", "track"]).any()
        assert sorted(h.track.unique()) == list(range(h.track.nunique()))
        # a track holds one person: the share of matched detections of their track's majority person
        m = h[h.person >= 0]
        majority = m.groupby("track").person.agg(lambda s: s.value_counts().iloc[0]).sum()
        assert majority / len(m) > 0.9
        assert m.groupby("person").track.nunique().median() <= 2  # players keep their track over 8 s
        # teams: one per track, 0/1; team 0 attacks +x in half 1 in both halves, as the renderer's truth says
        assert (h.groupby("track").team.nunique(dropna=False) == 1).all()
        players = m[(m.true_team >= 0) & m.team.notna()]
        assert len(players) > 0.7 * np.sum(m.true_team >= 0)
        assert np.mean(players.team.to_numpy() == players.true_team.to_numpy()) > 0.9
    # the TrackEval scores and the team figures agree with what the rows above show
    from matchflow.cli import main as cli_main
    from matchflow.tracking_evaluation import evaluate_tracking, format_tracking_report

    report = evaluate_tracking(str(out), str(corpus))
    assert len(report["sequences"]) == 2
    assert 0.5 < report["HOTA"] <= 1 and 0.5 < report["IDF1"] <= 1 and report["AssA"] > 0.5
    # the lenient threshold alone: matches at IoU 0.5 are a superset of those at the strict thresholds
    assert report["HOTA"] < report["HOTA_at_iou_0.5"] <= 1 and 0.5 < report["LocA"] < 1
    assert "at box overlap 0.5" in format_tracking_report(report)
    # the same detections with their true identities: what association could add at most
    assert report["HOTA"] - 0.05 < report["HOTA_true_identities"] <= 1
    assert report["team_accuracy"] > 0.9 and report["team_accuracy_best_permutation"] >= report["team_accuracy"]
    assert report["IDSW_per_player_minute"] >= 0 and report["player_minutes"] > 1
    # GS-HOTA (pitch points within 5 m, role and team side) from the gsr export of the same run
    assert report["GS-HOTA_missing"] is None
    for k in ("GS-HOTA", "GS-DetA", "GS-AssA"):
        assert np.isfinite(report[k]) and 0.0 <= report[k] <= 1.0, (k, report[k])
    assert report["GS-HOTA"] > 0.1  # teams right and positions within metres: far from 0
    assert "GS-HOTA" in format_tracking_report(report)
    assert cli_main(["eval", "tracking", str(out), str(corpus), "--json", str(tmp_path / "t.json")]) == 0
    assert json.loads((tmp_path / "t.json").read_text())["GS-HOTA"] == pytest.approx(report["GS-HOTA"])
    assert cli_main(["eval", "tracking", str(out), str(tmp_path / "nowhere")]) == 2


@pytest.mark.e2e
def test_exports_of_the_tracked_run(tracked_run, tmp_path):
    """kloppy, MOT and GSR exports of the tracked run carry its tracks, teams and roles."""
    from kloppy import secondspectrum

    from matchflow.exports import GSR_CATEGORIES, export, gsr_side
    from matchflow.storage.query import connect

    _, out = tracked_run
    db = connect(str(out))
    tracks = db.execute("SELECT game_id, half, track, team, CAST(cls AS VARCHAR) AS cls FROM tracks").df()
    gid = tracks.game_id.iloc[0]
    team_of = {(int(r.half), int(r.track)): None if pd.isna(r.team) else int(r.team) for r in tracks.itertuples()}
    role_of = {(int(r.half), int(r.track)): r.cls for r in tracks.itertuples()}

    # kloppy reads the Second Spectrum files back: a player per track with a team, on that team's side
    export(str(out), "kloppy", str(tmp_path / "kloppy"))
    folder = tmp_path / "kloppy" / gid
    ds = secondspectrum.load(meta_data=folder / "secondspectrum_meta.xml",
                             raw_data=folder / "secondspectrum_tracking.jsonl", coordinates="secondspectrum")
    home, away = ds.metadata.teams
    with_team = {f"{h}-{t}": team for (h, t), team in team_of.items() if team is not None}
    assert sorted(p.player_id for p in home.players + away.players) == sorted(with_team)
    assert all(with_team[p.player_id] == 0 for p in home.players) and home.players
    assert all(with_team[p.player_id] == 1 for p in away.players) and away.players
    seen = {p.player_id for f in ds.frames for p in f.players_data}
    assert len(seen) > 0.5 * len(with_team)

    # MOT: one line per tracked box, its track id
    export(str(out), "mot", str(tmp_path / "mot"))
    boxes = db.execute("SELECT half, frame, track FROM players WHERE track IS NOT NULL AND x1 IS NOT NULL").df()
    for half, h in boxes.groupby("half"):
        lines = (tmp_path / "mot" / gid / f"{half}_mot.txt").read_text().splitlines()
        got = sorted((int(v[0]) - 1, int(v[1])) for v in (line.split(",") for line in lines))
        assert got == sorted(zip(h.frame.astype(int), h.track.astype(int)))
        assert {t for _, t in got} == set(tracks[tracks.half == half].track.astype(int))

    # GSR: the annotations' track ids, roles and team sides are those of the tracks table
    export(str(out), "gsr", str(tmp_path / "gsr"))
    on_pitch = db.execute(
        "SELECT p.half, count(*) AS n FROM players p JOIN calibration c USING (game_id, half, frame) "
        "WHERE p.track IS NOT NULL AND p.x1 IS NOT NULL AND p.pitch_x IS NOT NULL AND c.valid GROUP BY ALL").df()
    for half in (1, 2):
        doc = json.loads((tmp_path / "gsr" / gid / str(half) / "Labels-GameState.json").read_text())
        anns = doc["annotations"]
        assert len(anns) == int(on_pitch.set_index("half").n[half]) > 0
        assert {a["track_id"] for a in anns} <= set(tracks[tracks.half == half].track.astype(int))
        for a in anns:
            key = (half, a["track_id"])
            role = role_of[key] or "other"
            assert a["attributes"]["role"] == role and a["category_id"] == GSR_CATEGORIES[role]
            assert a["attributes"]["team"] == (gsr_side(team_of[key], half) if role in ("player", "goalkeeper")
                                               else None)
            assert a["attributes"]["jersey"] is None
        assert {a["attributes"]["team"] for a in anns} >= {"left", "right"}

"""The tracking and teams stages through the real flow on a synthetic game: every detection gets a track and
players a team, against the renderer's true identities and teams."""

from __future__ import annotations

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


@pytest.mark.e2e
def test_tracks_and_teams_through_the_flow(tmp_path, prefect_api):
    from matchflow.flows.corpus import run_corpus
    from matchflow.storage.query import connect
    from matchflow.synth import synthesize_corpus

    corpus = tmp_path / "corpus"
    synthesize_corpus(corpus, games=1, halves=2, seconds=8.0, seed=4, width=640, height=360)
    out = tmp_path / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="3GiB", stages=STAGES,
                         stage_params={"detection": {"input_height": 360}, "reid": {"model": "histogram"}})
    summary = run_corpus(str(corpus), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    assert summary.stage_seconds["tracking"] > 0 and summary.stage_seconds["teams"] > 0
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
    from matchflow.tracking_evaluation import evaluate_tracking

    report = evaluate_tracking(str(out), str(corpus))
    assert len(report["sequences"]) == 2
    assert 0.5 < report["HOTA"] <= 1 and 0.5 < report["IDF1"] <= 1 and report["AssA"] > 0.5
    assert report["team_accuracy"] > 0.9 and report["team_accuracy_best_permutation"] >= report["team_accuracy"]
    assert report["IDSW_per_player_minute"] >= 0 and report["player_minutes"] > 1
    assert cli_main(["eval", "tracking", str(out), str(corpus), "--json", str(tmp_path / "t.json")]) == 0
    assert cli_main(["eval", "tracking", str(out), str(tmp_path / "nowhere")]) == 2

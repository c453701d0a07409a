"""Localization and the player graph through the real corpus flow (Dask LocalCluster, 2 workers) on rendered
broadcast video with close-up cut-aways: frames, calibration, detection, localization, graph."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from matchflow.config import PipelineConfig
from matchflow.flows.corpus import run_corpus
from matchflow.models.detection.metric import box_iou
from matchflow.storage.graphs import load_graph
from matchflow.storage.query import connect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from matchflow.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("loc-corpus")
    (folder,) = synthesize_corpus(root, games=1, halves=1, seconds=6.0, seed=5, width=640, height=360,
                                  cameras="heldout", cutaways=0.35, workers=1)
    return root, folder


def test_localization_and_graph_in_the_flow(corpus, tmp_path, prefect_api):
    root, folder = corpus
    out = tmp_path / "out"
    cfg = PipelineConfig(workers=2, chunk_frames=4, batch_frames=2, retries=0, memory_limit="3GiB",
                         stages=["frames", "calibration", "detection", "localization", "graph"])
    summary = run_corpus(str(root), str(out), cfg)
    assert not summary.failed and len(summary.committed) == 1
    check_output(out, folder)


def check_output(out, folder) -> None:
    """The checks of one run's output against the corpus's ground truth."""
    db = connect(str(out))
    players = db.execute(
        "SELECT p.*, c.valid, f.video_frame FROM players p JOIN calibration c USING (game_id, half, frame) "
        "JOIN frames f USING (game_id, half, frame) ORDER BY frame, det").df()
    cal = db.execute("SELECT frame, valid FROM calibration ORDER BY frame").df()
    edges = db.execute("SELECT frame, src, dst, distance FROM graph_edges ORDER BY frame, src, dst").df()
    ball = db.execute("SELECT b.*, c.valid FROM ball b JOIN calibration c USING (game_id, half, frame)").df()
    assert len(cal) == 12 and 0 < cal.valid.sum() < 12  # close-ups have no valid calibration

    # every player row has its colour, area and on_field flag
    assert len(players) > 0
    for col in ("on_field", "color_r", "color_g", "color_b", "area"):
        assert players[col].notna().all(), col
    np.testing.assert_allclose(players.area, (players.x2 - players.x1) * (players.y2 - players.y1), rtol=1e-4)
    # positions: null exactly without a valid calibration (and for the rare foot point above the horizon)
    valid = players.valid.astype(bool)
    assert players.loc[~valid, ["pitch_x", "pitch_y"]].isna().all().all()
    assert players.loc[valid, "pitch_x"].notna().mean() > 0.95
    assert ball.loc[~ball.valid.astype(bool), ["pitch_x", "pitch_y"]].isna().all().all()
    assert ball.loc[ball.valid.astype(bool), "pitch_x"].notna().all()
    # on the field: inside the pitch (1 m margin) wherever the position is known; most people are on it
    known = players.pitch_x.notna() & players.on_field.astype(bool)
    assert (players.pitch_x[known].abs() <= 53.5 + 1e-3).all() and (players.pitch_y[known].abs() <= 35 + 1e-3).all()
    assert players.on_field.astype(bool).mean() > 0.7

    # graph_edges: exactly the pairs of on-field players with positions closer than 25 m, once each
    nodes = players[players.on_field.astype(bool) & players.pitch_x.notna()]
    expect = set()
    for f, g in nodes.groupby("frame"):
        xy = g[["pitch_x", "pitch_y"]].to_numpy(float)
        d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        dets = g.det.to_numpy()
        for i, j in zip(*np.nonzero(np.triu(d < 25.0, k=1))):
            expect.add((int(f), int(dets[i]), int(dets[j])))
    got = set(zip(edges.frame.astype(int), edges.src.astype(int), edges.dst.astype(int)))
    assert len(got) > 0 and got == expect
    assert (edges.src < edges.dst).all() and (edges.distance < 25.0).all()
    assert set(edges.frame) <= set(cal.frame[cal.valid.astype(bool)])

    # the loader gives the same graphs, both directions
    game = players.game.iloc[0]
    graphs = load_graph(str(out), game, 1)
    n_edges = sum(g.edge_index.shape[1] for g in graphs.values())
    assert n_edges == 2 * len(edges)
    assert sum(g.x.shape[0] for g in graphs.values()) == len(nodes)

    # foot positions against the ground truth: detected players matched at IoU >= 0.5 on valid frames
    truth = pd.read_parquet(folder / "1_gt_players.parquet")
    errors = []
    for (_f, vf), g in players[valid].groupby(["frame", "video_frame"]):
        gt = truth[truth.frame == vf]
        iou = box_iou(g[["x1", "y1", "x2", "y2"]].to_numpy(float), gt[["x1", "y1", "x2", "y2"]].to_numpy(float))
        if iou.size == 0:
            continue
        for i, j in zip(*np.nonzero(iou >= 0.5)):
            if iou[i, j] == iou[i].max() and iou[i, j] == iou[:, j].max():
                dx, dy = g.pitch_x.iloc[i] - gt.pitch_x.iloc[j], g.pitch_y.iloc[i] - gt.pitch_y.iloc[j]
                errors.append(float(np.hypot(dx, dy)))
    errors = np.array(errors)
    assert len(errors) > 30, len(errors)
    assert np.nanmedian(errors) < 0.8, np.nanmedian(errors)
    assert np.nanquantile(errors, 0.9) < 2.0, np.nanquantile(errors, 0.9)

    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    assert manifest["stages"]["localization"] == "2" and manifest["stages"]["graph"] == "1"
    assert manifest["rows"]["graph_edges"] == len(edges)

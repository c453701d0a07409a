"""The player graph: edges against brute force, the graph stage, and the loader's round trip through Parquet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matchflow.models.representations.graph import FrameGraph, frame_edges, graph_edges
from matchflow.storage.graphs import load_graph


def _brute(xy: np.ndarray, thr: float) -> set[tuple[int, int]]:
    out = set()
    for i in range(len(xy)):
        for j in range(len(xy)):
            if i < j and np.isfinite(xy[[i, j]]).all() and np.sqrt(((xy[i] - xy[j]) ** 2).sum()) < thr:
                out.add((i, j))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_edges_are_exactly_the_pairs_under_the_threshold(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform([-52.5, -34.0], [52.5, 34.0], size=(int(rng.integers(0, 30)), 2))
    if len(xy) > 3:
        xy[2] = np.nan
    for thr in (5.0, 25.0):
        i, j, d = frame_edges(xy, thr)
        assert set(zip(i.tolist(), j.tolist())) == _brute(xy, thr)
        assert (i < j).all() and d.dtype == np.float32
        np.testing.assert_allclose(d, np.hypot(*(xy[i] - xy[j]).T), rtol=1e-6)


def test_a_pair_exactly_at_the_threshold_is_not_joined():
    i, _, _ = frame_edges(np.array([[0.0, 0.0], [25.0, 0.0], [0.0, 24.999]]), 25.0)
    assert i.tolist() == [0]


def test_graph_edges_over_frames_use_det_ids_and_on_field_players_only():
    frame = np.array([3, 3, 3, 3, 4, 4], np.int32)
    det = np.array([2, 0, 1, 3, 0, 1], np.int16)  # rows of frame 3 not in det order
    xy = np.array([[0, 0], [10, 0], [0, 10], [1, 1], [0, 0], [np.nan, np.nan]], float)
    onf = np.array([True, True, True, False, True, True])
    e = graph_edges(frame, det, xy, onf, 12.0)
    rows = sorted(zip(e["frame"].tolist(), e["src"].tolist(), e["dst"].tolist()))
    # frame 3: nodes det 2 (0,0), 0 (10,0), 1 (0,10); det 3 is off the field; 0-1 are 14.1 m apart
    assert rows == [(3, 0, 2), (3, 1, 2)]
    assert e["src"].dtype == np.int16 and e["distance"].dtype == np.float32
    np.testing.assert_allclose(sorted(e["distance"]), [10.0, 10.0])


def test_graph_stage_writes_edges_once_per_pair():
    from matchflow.stages.base import Batch, HalfContext
    from matchflow.stages.graph import GraphStage
    from matchflow.video import VideoInfo

    ctx = HalfContext("g", "g", 1, VideoInfo("x", 10, 25.0, 64, 36), 2.0)
    frames = np.array([0, 1], np.int32)
    b = Batch(ctx, frames, frames, frames * 0.5, np.zeros((2, 36, 64, 3), np.uint8))
    b.tables["players"] = {
        "frame": np.array([0, 0, 0, 1], np.int32), "det": np.array([0, 1, 2, 0], np.int16),
        "pitch_x": np.array([0, 3, 40, 0], np.float32), "pitch_y": np.array([0, 4, 0, 0], np.float32),
        "on_field": np.array([True, True, True, True]),
    }
    stage = GraphStage({"max_distance_m": 30})
    b._allowed = frozenset(stage.writes)
    stage.process(b)
    e = b.tables["graph_edges"]
    assert e["frame"].tolist() == [0] and e["src"].tolist() == [0] and e["dst"].tolist() == [1]
    np.testing.assert_allclose(e["distance"], [5.0])
    with pytest.raises(ValueError, match="max_dist"):
        GraphStage({"max_dist": 3})


def _write_game(root, players: dict, edges: dict) -> None:
    from matchflow.storage import manifest
    from matchflow.storage.layout import OutputLayout
    from matchflow.storage.tables import write_part

    layout = OutputLayout.at(str(root))
    write_part(layout, "players", "gA", "game A", 1, 0, {**players, "t": players["frame"] * 0.5})
    write_part(layout, "graph_edges", "gA", "game A", 1, 0, {**edges, "t": edges["frame"] * 0.5})
    manifest.write_manifest(layout, "gA", {"status": "committed", "game": "game A"})


def test_loader_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for f in range(4):
        n = int(rng.integers(3, 12))
        for d in range(n):
            rows.append((f, d))
    frame = np.array([r[0] for r in rows], np.int32)
    det = np.array([r[1] for r in rows], np.int16)
    n = len(rows)
    xy = rng.uniform([-52.5, -34.0], [52.5, 34.0], size=(n, 2)).astype(np.float32)
    onf = rng.random(n) > 0.2
    xy[frame == 2] = np.nan  # a frame without a valid calibration: no node
    colours = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
    area = rng.uniform(100, 5000, n).astype(np.float32)
    players = {"frame": frame, "det": det, "x1": np.zeros(n, np.float32), "pitch_x": xy[:, 0], "pitch_y": xy[:, 1],
               "on_field": onf, "color_r": colours[:, 0], "color_g": colours[:, 1], "color_b": colours[:, 2],
               "area": area}
    edges = graph_edges(frame, det, xy, onf, 25.0)
    _write_game(tmp_path, players, edges)

    graphs = load_graph(str(tmp_path), "game A", 1, frames=(1, 4))
    assert sorted(graphs) == [1, 2, 3]
    assert load_graph(str(tmp_path), "game A", 1, frames=0).keys() == {0}
    assert len(load_graph(str(tmp_path), "game A", 1)) == 4
    assert load_graph(str(tmp_path), "game A", 2) == {}
    for f, g in graphs.items():
        assert isinstance(g, FrameGraph) and g.frame == f
        sel = (frame == f) & onf & np.isfinite(xy).all(axis=1)
        order = np.argsort(det[sel])
        assert g.det.tolist() == det[sel][order].tolist()
        assert g.x.dtype == torch.float32 and g.x.shape == (int(sel.sum()), 6)
        expect = np.c_[colours[sel][order] / 255.0, xy[sel][order], area[sel][order]]
        np.testing.assert_allclose(g.x.numpy(), expect, rtol=1e-6)
        # both directions of every pair under 25 m, with its distance
        assert g.edge_index.dtype == torch.int64 and g.edge_index.shape[0] == 2
        assert g.edge_attr.shape == (g.edge_index.shape[1], 1)
        pts = g.x[:, 3:5].numpy().astype(float)
        und = _brute(pts, 25.0)
        got = set(zip(g.edge_index[0].tolist(), g.edge_index[1].tolist()))
        assert got == und | {(j, i) for i, j in und}
        s, t = g.edge_index.numpy()
        np.testing.assert_allclose(g.edge_attr[:, 0].numpy(), np.hypot(*(pts[s] - pts[t]).T), rtol=1e-5)
    assert graphs[2].x.shape == (0, 6) and graphs[2].edge_index.shape == (2, 0)


def test_pyg_data_needs_torch_geometric(tmp_path):
    g = FrameGraph(0, torch.zeros(0), torch.zeros(0, 6), torch.zeros(2, 0, dtype=torch.int64), torch.zeros(0, 1))
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="torch_geometric"):
            g.to_data()
    else:
        assert g.to_data().num_nodes == 0

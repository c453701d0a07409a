"""The player graph of one frame (the paper's section 4.3) and a loader of it from a run's output.

Nodes are the frame's ``on_field`` players with a pitch position; two nodes are joined when their distance
on the pitch (metres, SoccerNet pitch frame) is below ``max_distance_m`` (25 m in the paper).

Storage: the ``graph_edges`` table holds each undirected edge ONCE, ``src < dst`` (``det`` ids of the frame's
players), with its ``distance`` in metres (float32). :func:`matchflow.storage.graphs.load_graph` expands every edge into both
directions, as PyTorch Geometric expects of an undirected graph.

Node features ``x`` (N, 6) float32, in this order: ``color_r / 255, color_g / 255, color_b / 255`` (0..1),
``pitch_x, pitch_y`` (metres), ``area`` (box area, native pixels²). Nodes are ordered by ``det``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_MAX_DISTANCE_M", "NODE_FEATURES", "frame_edges", "graph_edges", "FrameGraph", "build_graph"]

DEFAULT_MAX_DISTANCE_M = 25.0
NODE_FEATURES = ("color_r/255", "color_g/255", "color_b/255", "pitch_x_m", "pitch_y_m", "area_px2")


def frame_edges(
    xy: np.ndarray, max_distance_m: float = DEFAULT_MAX_DISTANCE_M
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges between the points (N, 2) metres of one frame closer than ``max_distance_m`` (strictly): node
    indices ``i < j`` (E,) each and the distance (E,) float32 metres, ordered by (i, j). NaN points have no
    edge."""
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    i, j = np.triu_indices(len(p), k=1)
    d = np.hypot(p[i, 0] - p[j, 0], p[i, 1] - p[j, 1])
    with np.errstate(invalid="ignore"):
        keep = d < max_distance_m
    return i[keep], j[keep], d[keep].astype(np.float32)


def graph_edges(
    frame: np.ndarray, det: np.ndarray, pitch_xy: np.ndarray, on_field: np.ndarray,
    max_distance_m: float = DEFAULT_MAX_DISTANCE_M,
) -> dict[str, np.ndarray]:
    """``graph_edges`` rows for player rows (``frame``, ``det``, ``pitch_xy`` (N, 2) metres, ``on_field``) of
    any number of frames: ``frame``, ``src``, ``dst`` (det ids, src < dst, int16), ``distance`` (float32 m).
    Only ``on_field`` players with a finite position are nodes."""
    frame = np.asarray(frame)
    det = np.asarray(det)
    xy = np.asarray(pitch_xy, dtype=np.float64).reshape(-1, 2)
    node = np.asarray(on_field, bool) & np.isfinite(xy).all(axis=1)
    out_f, out_s, out_d, out_w = [], [], [], []
    for f in np.unique(frame[node]):
        rows = np.flatnonzero(node & (frame == f))
        rows = rows[np.argsort(det[rows], kind="stable")]
        i, j, d = frame_edges(xy[rows], max_distance_m)
        out_f.append(np.full(len(i), f, np.int32))
        out_s.append(det[rows][i])
        out_d.append(det[rows][j])
        out_w.append(d)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return {"frame": cat(out_f, np.int32), "src": cat(out_s, np.int16), "dst": cat(out_d, np.int16),
            "distance": cat(out_w, np.float32)}


@dataclass
class FrameGraph:
    """The player graph of one frame as torch tensors: ``x`` (N, 6) float32 node features (order in
    :data:`NODE_FEATURES`), ``edge_index`` (2, E) int64 node indices with both directions of every edge,
    ``edge_attr`` (E, 1) float32 distance in metres, ``det`` (N,) int64 the nodes' det ids, ``frame``."""

    frame: int
    det: Any
    x: Any
    edge_index: Any
    edge_attr: Any

    def to_data(self) -> Any:
        """A ``torch_geometric.data.Data`` (x, edge_index, edge_attr, det, frame); needs torch_geometric,
        which Matchflow does not depend on."""
        try:
            from torch_geometric.data import Data
        except ImportError as exc:
            raise ImportError("FrameGraph.to_data needs torch_geometric (pip install torch_geometric)") from exc
        return Data(x=self.x, edge_index=self.edge_index, edge_attr=self.edge_attr, det=self.det, frame=self.frame)


def build_graph(frame: int, nodes: dict[str, np.ndarray], edges: dict[str, np.ndarray]) -> FrameGraph:
    """A :class:`FrameGraph` from one frame's node rows (``det``, ``color_r/g/b``, ``pitch_x``, ``pitch_y``,
    ``area``; on-field players with positions) and its edge rows (``src``, ``dst`` det ids, ``distance``)."""
    import torch

    det = np.asarray(nodes["det"], np.int64)
    order = np.argsort(det, kind="stable")
    det = det[order]
    feats = np.stack([
        np.asarray(nodes["color_r"], np.float32)[order] / 255.0,
        np.asarray(nodes["color_g"], np.float32)[order] / 255.0,
        np.asarray(nodes["color_b"], np.float32)[order] / 255.0,
        np.asarray(nodes["pitch_x"], np.float32)[order],
        np.asarray(nodes["pitch_y"], np.float32)[order],
        np.asarray(nodes["area"], np.float32)[order],
    ], axis=1).reshape(-1, 6)
    pos = {int(d): k for k, d in enumerate(det)}
    src = np.asarray(edges["src"], np.int64)
    dst = np.asarray(edges["dst"], np.int64)
    missing = {int(v) for v in np.concatenate([src, dst]) if int(v) not in pos}
    if missing:
        raise ValueError(f"frame {frame}: graph_edges name det ids {sorted(missing)} that are not on-field nodes")
    s = np.fromiter((pos[int(v)] for v in src), np.int64, len(src))
    t = np.fromiter((pos[int(v)] for v in dst), np.int64, len(dst))
    w = np.asarray(edges["distance"], np.float32)
    return FrameGraph(
        frame=int(frame),
        det=torch.from_numpy(det),
        x=torch.from_numpy(np.ascontiguousarray(feats, np.float32)),
        edge_index=torch.from_numpy(np.stack([np.concatenate([s, t]), np.concatenate([t, s])]).reshape(2, -1)),
        edge_attr=torch.from_numpy(np.concatenate([w, w]).reshape(-1, 1)),
    )

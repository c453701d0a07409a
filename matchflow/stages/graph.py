"""The ``graph`` stage: the per-frame player graph's edges (the paper's section 4.3).

Nodes are a frame's ``on_field`` players with a pitch position (no valid calibration: no node, no edge). Two
nodes are joined when they are closer than ``max_distance_m`` metres on the pitch. Each undirected edge is
written once, ``src < dst`` (``det`` ids), with its ``distance`` (float32 metres); readers that want both
directions (PyTorch Geometric) expand them: :func:`matchflow.storage.graphs.load_graph`.

Parameters (``stage_params.graph``): ``max_distance_m`` (25.0).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from matchflow.stages.base import Batch, FrameStage, StageParams


class GraphParams(StageParams):
    """``stage_params.graph``: ``max_distance_m``, the longest edge in pitch metres."""

    max_distance_m: float = Field(25.0, gt=0)


class GraphStage(FrameStage):
    """Writes ``graph_edges`` (``src``, ``dst``, ``distance``) from the ``players`` positions."""

    name = "graph"
    Params = GraphParams
    params: GraphParams
    reads = ("players.det", "players.pitch_x", "players.pitch_y", "players.on_field")
    writes = ("graph_edges.src", "graph_edges.dst", "graph_edges.distance")
    version = "1"

    def process(self, batch: Batch) -> None:
        from matchflow.models.representations.graph import graph_edges

        p = batch.tables["players"]
        xy = np.stack([np.asarray(p["pitch_x"], np.float64), np.asarray(p["pitch_y"], np.float64)], axis=1)
        e = graph_edges(p["frame"], p["det"], xy, p["on_field"], self.params.max_distance_m)
        batch.put_rows("graph_edges", e["frame"], src=e["src"], dst=e["dst"], distance=e["distance"])

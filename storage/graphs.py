"""Reading the player graph back from an output root: the ``players`` and ``graph_edges`` tables of a half as
one :class:`matchflow.models.representations.graph.FrameGraph` per sampled frame (pitch metres, SoccerNet frame)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from matchflow.models.representations.graph import build_graph
from matchflow.storage.query import connect, retrying

__all__ = ["load_graph"]


def load_graph(
    out: str,
    game: str,
    half: int,
    frames: int | tuple[int, int] | range | None = None,
    storage_options: dict[str, Any] | None = None,
    as_data: bool = False,
) -> dict[int, Any]:
    """Player graphs of sampled frames of one half of a committed game in the output ``out`` (local folder or
    s3 URL; DuckDB views of :func:`matchflow.storage.query.connect`).

    ``game``: the game key; ``frames``: one sampled frame, a span ``(start, stop)`` (stop excluded) or a
    ``range``, None for all. Returns {frame: :class:`FrameGraph`} for every frame of the span that has
    ``players`` rows (a frame without on-field players has an empty graph), or PyTorch Geometric ``Data``
    objects with ``as_data`` (needs torch_geometric)."""
    if frames is None:
        lo, hi = -(2**31), 2**31 - 1
    elif isinstance(frames, (int, np.integer)):
        lo, hi = int(frames), int(frames) + 1
    elif isinstance(frames, range):
        if frames.step != 1:
            raise ValueError("frames: a range of step 1")
        lo, hi = frames.start, frames.stop
    else:
        lo, hi = (int(v) for v in frames)
    args = [game, int(half), lo, hi]
    where = "game = ? AND half = ? AND frame >= ? AND frame < ?"

    def read() -> tuple[dict[str, Any], dict[str, Any]]:  # both tables from one connection: one version
        db = connect(out, storage_options)
        players = db.execute(
            f"SELECT frame, det, on_field, pitch_x, pitch_y, color_r, color_g, color_b, area FROM players "
            f"WHERE {where} ORDER BY frame, det", args,
        ).fetchnumpy()
        edges = db.execute(f"SELECT frame, src, dst, distance FROM graph_edges WHERE {where} ORDER BY frame, src, dst",
                           args).fetchnumpy()
        return players, edges

    players, edges = retrying(read)
    pf = np.asarray(players["frame"])
    onf = _bool(players["on_field"])
    px, py = _float(players["pitch_x"]), _float(players["pitch_y"])
    node = onf & np.isfinite(px) & np.isfinite(py)
    ef = np.asarray(edges["frame"])
    graphs: dict[int, Any] = {}
    for f in np.unique(pf):
        rows = node & (pf == f)
        nodes = {k: _float(players[k])[rows] if k in ("pitch_x", "pitch_y", "area") else np.asarray(players[k])[rows]
                 for k in ("det", "color_r", "color_g", "color_b", "pitch_x", "pitch_y", "area")}
        e = ef == f
        g = build_graph(int(f), nodes, {k: np.asarray(edges[k])[e] for k in ("src", "dst", "distance")})
        graphs[int(f)] = g.to_data() if as_data else g
    return graphs


def _bool(values: Any) -> np.ndarray:
    """A nullable boolean column as bool (null -> False)."""
    if np.ma.isMaskedArray(values):
        return np.asarray(values.filled(False), bool)
    return np.asarray(values, bool)


def _float(values: Any) -> np.ndarray:
    """A nullable numeric column as float64 (null -> NaN)."""
    if np.ma.isMaskedArray(values):
        return np.asarray(cast(np.ma.MaskedArray, values.astype(np.float64)).filled(np.nan))
    return np.asarray(values, np.float64)

"""Exporting committed games of an output root to formats other tools read (``matchflow export``).

- ``kloppy``: a wide tracking table per game and half (Parquet and CSV) in the coordinate system tracking
  providers use (metres, origin at the centre spot, **+y up**, i.e. y flipped with respect to the output
  tables), with a ``metadata.json`` sidecar: :func:`export_kloppy`.
- ``soccernet-ccbv``: SoccerNet CCBV calibration files, one per half: :func:`export_soccernet_ccbv`.
- ``mot``: MOT Challenge text files of the tracked boxes, one per half: :func:`export_mot`.

Every export reads the committed games of ``out`` only (as the SQL views do) and writes under
``dest/<game_id>/``; ``out`` is never modified, and a ``dest`` inside ``out`` is refused. Problems (an output root
without committed games, an unknown game, a table the format needs that a game lacks) raise
:class:`ExportError`, whose message names the path or the table.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from matchflow.models.geometry.pitch import PitchModel
from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import COMMITTED, read_all_manifests
from matchflow.storage.soccernet import write_ccbv
from matchflow.storage.tables import committed_dataset

__all__ = [
    "ExportError",
    "ExportedGame",
    "FORMATS",
    "REQUIRED_TABLES",
    "CCBV_SUFFIX",
    "committed_games",
    "export",
    "export_kloppy",
    "export_mot",
    "export_soccernet_ccbv",
    "kloppy_tracking_table",
    "mot_lines",
]

FORMATS = ("kloppy", "soccernet-ccbv", "mot")
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "kloppy": ("frames", "calibration", "players"),  # the ball table is used when present
    "soccernet-ccbv": ("frames", "calibration"),
    "mot": ("frames", "players"),
}
CCBV_SUFFIX = "_field_calib_ccbv.json"
KLOPPY_METADATA = "metadata.json"


class ExportError(ValueError):
    """An output root, game or table that cannot be exported; the message names the path or the table."""


@dataclass(frozen=True)
class ExportedGame:
    """A committed game of an output root: its key (folder path in the corpus), id and manifest."""

    key: str
    game_id: str
    manifest: dict[str, Any]


# --------------------------------------------------------------------------------------------- reading
def committed_games(
    out: str, game: str | None = None, storage_options: dict[str, Any] | None = None
) -> list[ExportedGame]:
    """The committed games of ``out`` (sorted by key), or the one whose key or game id is ``game``.

    Raises ExportError when ``out`` does not exist, holds no committed game, or ``game`` is not one of them.
    """
    layout = OutputLayout.at(out)
    if not fs.exists(layout.root, storage_options):
        raise ExportError(f"output root {out} does not exist")
    try:
        manifests = read_all_manifests(layout, storage_options)
    except ValueError as exc:
        raise ExportError(f"output root {out}: {exc}") from None
    games = sorted(
        (ExportedGame(str(m.get("game", gid)), gid, m) for gid, m in manifests.items() if m.get("status") == COMMITTED),
        key=lambda g: (g.key, g.game_id),
    )
    if not games:
        raise ExportError(
            f"output root {out} holds no committed game (no manifest with status {COMMITTED!r} under "
            f"{layout.manifest_dir()})"
        )
    if game is None:
        return games
    chosen = [g for g in games if game in (g.key, g.game_id)]
    if not chosen:
        known = ", ".join(repr(g.key) for g in games[:10]) + (" ..." if len(games) > 10 else "")
        raise ExportError(f"game {game!r} is not a committed game of {out} (committed games: {known})")
    return chosen


def _has_table(layout: OutputLayout, table: str, game_id: str, storage_options: dict[str, Any] | None) -> bool:
    return any(f.endswith(".parquet") for f in fs.list_files(layout.partition(table, game_id), storage_options))


def _check_tables(
    layout: OutputLayout, games: list[ExportedGame], fmt: str, storage_options: dict[str, Any] | None
) -> None:
    for g in games:
        for table in REQUIRED_TABLES[fmt]:
            if not _has_table(layout, table, g.game_id, storage_options):
                raise ExportError(
                    f"game {g.key!r} has no {table!r} table ({layout.partition(table, g.game_id)} holds no Parquet "
                    f"file); the {fmt} export needs the tables {', '.join(REQUIRED_TABLES[fmt])}"
                )


def _read(
    layout: OutputLayout, table: str, game_id: str, storage_options: dict[str, Any] | None
) -> pa.Table | None:
    """One game's rows of ``table`` (None when the game has none of its files)."""
    if not _has_table(layout, table, game_id, storage_options):
        return None
    return committed_dataset(layout, table, [game_id], storage_options).to_table()


def _half(tbl: pa.Table | None, half: int) -> pa.Table | None:
    if tbl is None:
        return None
    return tbl.filter(pc.equal(tbl.column("half"), half))


def _halves(frames: pa.Table) -> list[int]:
    return sorted({int(h) for h in frames.column("half").to_pylist()})


def _floats(tbl: pa.Table, col: str, dtype: Any = np.float64) -> np.ndarray:
    """A numeric column as a float array, nulls as NaN."""
    return np.asarray(tbl.column(col).cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=dtype)


def _ints(tbl: pa.Table, col: str) -> np.ndarray:
    return np.asarray(tbl.column(col).to_numpy(zero_copy_only=False), dtype=np.int64)


def _bools(tbl: pa.Table, col: str) -> np.ndarray:
    """A boolean column, nulls as False."""
    return np.asarray(pc.fill_null(tbl.column(col), False).to_numpy(zero_copy_only=False), dtype=bool)


def _sorted_frames(frames: pa.Table) -> pa.Table:
    """One row per sampled frame, in frame order."""
    frames = frames.sort_by("frame")
    f = _ints(frames, "frame")
    keep = np.ones(len(f), bool)
    keep[1:] = f[1:] != f[:-1]
    return frames.filter(pa.array(keep))


def _row_of(frame_ids: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Row in the sorted ``frame_ids`` of each of ``frames``; -1 where a frame is not there."""
    if len(frame_ids) == 0:
        return np.full(len(frames), -1, np.int64)
    pos = np.clip(np.searchsorted(frame_ids, frames), 0, len(frame_ids) - 1)
    return np.where(frame_ids[pos] == frames, pos, -1)


def _check_dest(out: str, dest: str) -> str:
    """``dest`` normalised; ExportError when it is ``out`` or lies inside it (exports never modify ``out``)."""
    o, d = fs.normalize(out), fs.normalize(dest)
    if not fs.is_remote(o) and not fs.is_remote(d):
        o, d = os.path.realpath(o), os.path.realpath(d)
    if d == o or d.startswith(o.rstrip("/") + "/"):
        raise ExportError(f"destination {dest} lies inside the output root {out}; exports never write into it")
    return fs.normalize(dest)


def _write(url: str, data: bytes, storage_options: dict[str, Any] | None, written: list[str]) -> None:
    fs.write_bytes_atomic(url, data, storage_options)
    written.append(url)


def _fmt(v: float) -> str:
    """A float32 value in its shortest text that reads back to the same float32."""
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


# --------------------------------------------------------------------------------------------- kloppy
def kloppy_tracking_table(
    frames: pa.Table, calibration: pa.Table | None, players: pa.Table, ball: pa.Table | None = None
) -> pa.Table:
    """The wide tracking table of one half, in the provider coordinate system (+y up).

    One row per sampled frame (frame order): ``period_id`` (the half), ``frame_id`` (index of the sampled frame
    within the half), ``timestamp`` (seconds from the start of the half), ``ball_x``, ``ball_y``, then
    ``<track>_x``, ``<track>_y`` for each track id present in the half's players (ascending; players without
    a track are left out). Coordinates are float32 metres with the origin at the centre spot, x along the
    touchlines (+x toward the goal on the right as seen from the main camera) and **y flipped**:
    ``y = -pitch_y``, so +y points up, away from the main camera, as Tracab, SkillCorner and kloppy have it.
    Frames without a valid calibration (no row in ``calibration`` or ``valid`` not true) hold nulls in every
    coordinate column, as do a track's frames without a position. Where a frame holds several ball rows the
    highest score with a pitch position is used (likewise for a track seen twice in a frame).
    """
    frames = _sorted_frames(frames)
    n = frames.num_rows
    fid = _ints(frames, "frame")
    half = int(frames.column("half")[0].as_py()) if n else 0
    ok = np.zeros(n, bool)
    if calibration is not None and calibration.num_rows:
        rows = _row_of(fid, _ints(calibration, "frame"))
        good = _bools(calibration, "valid") & (rows >= 0)
        ok[rows[good]] = True

    def best(tbl: pa.Table, by: list[str]) -> pd.DataFrame:
        """Rows with a finite pitch position in valid frames, the highest score per ``by`` group."""
        df = pd.DataFrame({
            "row": _row_of(fid, _ints(tbl, "frame")),
            "x": _floats(tbl, "pitch_x", np.float32),
            "y": _floats(tbl, "pitch_y", np.float32),
            "score": _floats(tbl, "score"),
            **{k: _ints(tbl, k) for k in by if k != "row"},
        })
        df = df[(df["row"] >= 0) & np.isfinite(df["x"]) & np.isfinite(df["y"])]
        df = df[ok[df["row"].to_numpy()]]
        return df.sort_values("score", ascending=False, na_position="last", kind="stable").drop_duplicates(by)

    def column(df: pd.DataFrame, name: str, sign: float) -> np.ndarray:
        out = np.full(n, np.nan, np.float32)
        out[df["row"].to_numpy()] = sign * df[name].to_numpy(np.float32) + np.float32(0.0)  # no -0.0
        return out

    cols: dict[str, pa.Array] = {
        "period_id": pa.array(np.full(n, half, np.int8)),
        "frame_id": pa.array(fid.astype(np.int32)),
        "timestamp": pa.array(_floats(frames, "t")),
    }
    if ball is not None and ball.num_rows:
        b = best(ball, ["row"])
        cols["ball_x"] = pa.array(column(b, "x", 1.0), from_pandas=True)
        cols["ball_y"] = pa.array(column(b, "y", -1.0), from_pandas=True)
    else:
        cols["ball_x"] = cols["ball_y"] = pa.nulls(n, pa.float32())
    tracked = players.filter(pc.is_valid(players.column("track")))
    tracks = sorted({int(t) for t in tracked.column("track").to_pylist()})
    p = best(tracked, ["row", "track"]) if tracked.num_rows else None
    for track in tracks:
        assert p is not None  # tracks is non-empty only when tracked has rows
        sel = p[p["track"] == track]
        cols[f"{track}_x"] = pa.array(column(sel, "x", 1.0), from_pandas=True)
        cols[f"{track}_y"] = pa.array(column(sel, "y", -1.0), from_pandas=True)
    return pa.table(cols)


def _track_teams(players: pa.Table) -> dict[int, int | None]:
    """The most frequent team of each track (None when the track never has one)."""
    tracked = players.filter(pc.is_valid(players.column("track")))
    df = pd.DataFrame({"track": _ints(tracked, "track"), "team": _floats(tracked, "team")})
    out: dict[int, int | None] = {}
    for track, grp in df.groupby("track", sort=True):
        teams = grp["team"].dropna()
        out[int(track)] = int(teams.mode().min()) if len(teams) else None
    return out


def _frame_rate(frames: pa.Table, manifest: dict[str, Any]) -> float | None:
    """Sampled frames per second: from the timestamps (median step), else the run's configured fps."""
    steps = []
    for h in _halves(frames):
        t = np.sort(_floats(_sorted_frames(_half(frames, h)), "t"))
        steps.extend(np.diff(t)[np.diff(t) > 0].tolist())
    if steps:
        return round(1.0 / float(np.median(steps)), 6)
    fps = (manifest.get("config") or {}).get("fps")
    return float(fps) if isinstance(fps, (int, float)) else None


def export_kloppy(
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """Write kloppy-style wide tracking tables of the committed games of ``out`` under ``dest``; returns the files.

    Per game, under ``dest/<game_id>/``: ``<half>_tracking.parquet`` and ``<half>_tracking.csv`` (see
    :func:`kloppy_tracking_table` for the columns; CSV nulls are empty fields) and ``metadata.json``.

    Coordinate system: metres, origin at the centre spot, x along the touchlines (+x toward the goal on the
    right as seen from the main camera), **y flipped with respect to the output tables** (``y = -pitch_y``), so
    +y points up, away from the main camera, as tracking providers (Tracab, SkillCorner) and kloppy use: it is
    kloppy's SkillCorner system (origin CENTER, vertical orientation BOTTOM_TO_TOP, metres). x is not normalised
    to a playing direction: it stays as filmed in both halves. Frames without a valid calibration hold nulls.
    ``metadata.json`` states the coordinate system, the flip, the pitch size (105 x 68 m, the pitch model of
    the calibration), the frame rate, the game key and id, and per half the file names, frame count and
    tracks (with each track's most frequent team). Needs the ``frames``, ``calibration`` and ``players``
    tables; uses ``ball`` when the game has it (ball columns are null otherwise).
    """
    return export(out, "kloppy", dest, game, storage_options)


def _export_kloppy_game(
    layout: OutputLayout, g: ExportedGame, folder: str, storage_options: dict[str, Any] | None, written: list[str]
) -> None:
    frames = _read(layout, "frames", g.game_id, storage_options)
    calibration = _read(layout, "calibration", g.game_id, storage_options)
    players = _read(layout, "players", g.game_id, storage_options)
    ball = _read(layout, "ball", g.game_id, storage_options)
    pitch = PitchModel()
    periods = []
    for h in _halves(frames):
        ph = _half(players, h)
        tbl = kloppy_tracking_table(_half(frames, h), _half(calibration, h), ph, _half(ball, h))
        name = f"{h}_tracking"
        buf = io.BytesIO()
        pq.write_table(tbl, buf, compression="zstd")
        _write(fs.join(folder, f"{name}.parquet"), buf.getvalue(), storage_options, written)
        buf = io.BytesIO()
        pacsv.write_csv(tbl, buf)
        _write(fs.join(folder, f"{name}.csv"), buf.getvalue(), storage_options, written)
        ts = tbl.column("timestamp").to_numpy()
        periods.append({
            "period_id": h,
            "parquet": f"{name}.parquet",
            "csv": f"{name}.csv",
            "frames": tbl.num_rows,
            "start_timestamp": float(ts.min()) if len(ts) else None,
            "end_timestamp": float(ts.max()) if len(ts) else None,
            "tracks": [{"track": t, "team": team} for t, team in _track_teams(ph).items()],
        })
    meta = {
        "format": "matchflow wide tracking table (kloppy-style)",
        "game": g.key,
        "game_id": g.game_id,
        "coordinate_system": {
            "units": "metres",
            "origin": "centre spot",
            "x": "along the touchlines; +x toward the goal on the right as seen from the main camera",
            "y": "across the pitch; +y up: away from the main camera, toward the far touchline",
            "y_flipped": True,
            "flip": "y = -pitch_y: the output tables (SoccerNet frame) have +y toward the main camera",
            "x_normalised_to_playing_direction": False,
            "kloppy": {"provider": "skillcorner", "origin": "CENTER", "vertical_orientation": "BOTTOM_TO_TOP"},
        },
        "pitch": {"length": pitch.length, "width": pitch.width,
                  "x_range": [-pitch.half_length, pitch.half_length], "y_range": [-pitch.half_width, pitch.half_width]},
        "frame_rate": _frame_rate(frames, g.manifest),
        "columns": {
            "period_id": "half (1, 2)",
            "frame_id": "index of the sampled frame within the half",
            "timestamp": "seconds from the start of the half",
            "ball_x, ball_y": "ball position (null without a valid calibration or a ball on the pitch)",
            "<track>_x, <track>_y": "position of each tracked player (null without a valid calibration)",
        },
        "ball": ball is not None,
        "periods": periods,
    }
    _write(fs.join(folder, KLOPPY_METADATA), json.dumps(meta, indent=2).encode(), storage_options, written)


# --------------------------------------------------------------------------------------------- CCBV
def export_soccernet_ccbv(
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """Write SoccerNet CCBV calibration files of the committed games of ``out`` under ``dest``; returns the files.

    Per game and half: ``dest/<game_id>/<half>_field_calib_ccbv.json``, one prediction per sampled frame of the
    ``frames`` table in frame order, from the ``calibration`` table through
    :func:`matchflow.storage.soccernet.write_ccbv` (pitch-to-image homographies for the frames' native
    ``width`` x ``height``, confidence = ``score``); frames without a valid calibration get the placeholder
    homography with confidence 0. Needs the ``frames`` and ``calibration`` tables.
    """
    return export(out, "soccernet-ccbv", dest, game, storage_options)


def _export_ccbv_game(
    layout: OutputLayout, g: ExportedGame, folder: str, storage_options: dict[str, Any] | None, written: list[str]
) -> None:
    frames = _read(layout, "frames", g.game_id, storage_options)
    calibration = _read(layout, "calibration", g.game_id, storage_options)
    for h in _halves(frames):
        fr = _sorted_frames(_half(frames, h))
        sizes = sorted(set(zip(_ints(fr, "width").tolist(), _ints(fr, "height").tolist())))
        if len(sizes) != 1:
            raise ExportError(f"game {g.key!r} half {h}: the frames table holds several image sizes {sizes}")
        n = fr.num_rows
        hs = np.full((n, 9), np.nan)
        conf = np.zeros(n)
        valid = np.zeros(n, bool)
        cal = cast(pa.Table, _half(calibration, h))  # the table is required: export() ran _check_tables
        if cal.num_rows:
            rows = _row_of(_ints(fr, "frame"), _ints(cal, "frame"))
            m = rows >= 0
            hom = cal.column("homography")
            mats = np.full((cal.num_rows, 9), np.nan)
            for i, v in enumerate(hom.to_pylist()):
                if v is not None:
                    mats[i] = v
            hs[rows[m]] = mats[m]
            conf[rows[m]] = np.nan_to_num(_floats(cal, "score")[m], nan=0.0)
            valid[rows[m]] = _bools(cal, "valid")[m]
        url = fs.join(folder, f"{h}{CCBV_SUFFIX}")
        write_ccbv(url, hs, sizes[0], conf, valid, storage_options=storage_options)
        written.append(url)


# --------------------------------------------------------------------------------------------- MOT
def mot_lines(players: pa.Table) -> list[str]:
    """MOT Challenge lines of one half's tracked boxes, ordered by frame then id.

    ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z``: frame = sampled frame index + 1 (MOT frames are
    1-based), id = ``track``, the box in pixels from ``x1, y1, x2, y2``, conf = ``score`` (1 when null), and -1
    for x, y, z. Rows without a track or with a missing box coordinate are left out.
    """
    tracked = players.filter(pc.is_valid(players.column("track")))
    f, tr = _ints(tracked, "frame"), _ints(tracked, "track")
    x1, y1, x2, y2 = (_floats(tracked, c, np.float32) for c in ("x1", "y1", "x2", "y2"))
    score = _floats(tracked, "score", np.float32)
    keep = np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2)
    lines = []
    for i in np.lexsort((tr, f)):
        if keep[i]:
            conf = _fmt(score[i]) if np.isfinite(score[i]) else "1"
            lines.append(
                f"{f[i] + 1},{tr[i]},{_fmt(x1[i])},{_fmt(y1[i])},{_fmt(x2[i] - x1[i])},{_fmt(y2[i] - y1[i])},"
                f"{conf},-1,-1,-1"
            )
    return lines


def export_mot(
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """Write MOT Challenge files of the committed games of ``out`` under ``dest``; returns the files.

    Per game and half (every half of the ``frames`` table, an empty file when nothing is tracked):
    ``dest/<game_id>/<half>_mot.txt``, lines as :func:`mot_lines` writes them. Needs the ``frames`` and
    ``players`` tables.
    """
    return export(out, "mot", dest, game, storage_options)


def _export_mot_game(
    layout: OutputLayout, g: ExportedGame, folder: str, storage_options: dict[str, Any] | None, written: list[str]
) -> None:
    frames = _read(layout, "frames", g.game_id, storage_options)
    players = _read(layout, "players", g.game_id, storage_options)
    for h in _halves(frames):
        lines = mot_lines(_half(players, h))
        text = "".join(line + "\n" for line in lines)
        _write(fs.join(folder, f"{h}_mot.txt"), text.encode(), storage_options, written)


# --------------------------------------------------------------------------------------------- dispatch
_WRITERS: dict[str, Callable[..., None]] = {
    "kloppy": _export_kloppy_game,
    "soccernet-ccbv": _export_ccbv_game,
    "mot": _export_mot_game,
}


def export(
    out: str, fmt: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """Export the committed games of ``out`` (or only ``game``, a game key or id) as ``fmt`` under ``dest``.

    ``fmt`` is one of :data:`FORMATS`. Every selected game is checked for the tables the format needs before
    anything is written. Returns the written files (URLs or absolute paths), in order. Raises ExportError.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    layout = OutputLayout.at(out)
    games = committed_games(out, game, storage_options)
    dest_url = _check_dest(out, dest)
    _check_tables(layout, games, fmt, storage_options)
    written: list[str] = []
    for g in games:
        _WRITERS[fmt](layout, g, fs.join(dest_url, g.game_id), storage_options, written)
    return written

"""Exporting committed games of an output root to formats other tools read (``matchflow export``).

- ``kloppy``: tracking data kloppy loads, in Second Spectrum's format (``kloppy.secondspectrum.load``), plus a
  wide tracking table per half (Parquet and CSV), in the coordinate system tracking providers use (metres,
  origin at the centre spot, **+y up**, i.e. y flipped with respect to the output tables), with a
  ``metadata.json`` sidecar: :func:`export_kloppy`.
- ``soccernet-ccbv``: SoccerNet CCBV calibration files, one per half: :func:`export_soccernet_ccbv`.
- ``mot``: MOT Challenge text files of the tracked boxes, one per half: :func:`export_mot`.
- ``gsr``: SoccerNet game-state reconstruction labels (``Labels-GameState.json``), one per half: the tracked
  people with their boxes, pitch positions, roles and team sides: :func:`export_gsr`.

Every export reads the committed games of ``out`` only (as the SQL views do) and writes under
``dest/<game_id>/``; ``out`` is never modified, and a ``dest`` inside ``out`` is refused. Problems (an output root
without committed games, an unknown game, a table the format needs that a game lacks) raise
:class:`ExportError`, whose message names the path or the table. An export with nothing in it (no tracked box
for ``mot``, no position for ``kloppy``, no valid calibration for ``soccernet-ccbv``, no tracked person on the
pitch for ``gsr``) raises
:class:`EmptyExport` before writing anything, unless ``allow_empty``.
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

from matchflow.models.geometry.camera import apply_homography
from matchflow.models.geometry.pitch import PitchModel
from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import COMMITTED, read_all_manifests, version_of
from matchflow.storage.soccernet import write_ccbv
from matchflow.storage.tables import committed_dataset, version_files

__all__ = [
    "EmptyExport",
    "ExportError",
    "ExportedGame",
    "FORMATS",
    "GSR_CATEGORIES",
    "GSR_LABELS",
    "REQUIRED_TABLES",
    "CCBV_SUFFIX",
    "committed_games",
    "export",
    "export_gsr",
    "export_kloppy",
    "export_mot",
    "export_soccernet_ccbv",
    "gsr_game_labels",
    "gsr_image_id",
    "gsr_labels",
    "gsr_side",
    "kloppy_tracking_table",
    "mot_lines",
]

FORMATS = ("kloppy", "soccernet-ccbv", "mot", "gsr")
REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "kloppy": ("frames", "calibration", "players"),  # the ball table is used when present
    "soccernet-ccbv": ("frames", "calibration"),
    "mot": ("frames", "players"),
    "gsr": ("frames", "calibration", "players", "tracks"),
}
CCBV_SUFFIX = "_field_calib_ccbv.json"
KLOPPY_METADATA = "metadata.json"
#: The Second Spectrum pair kloppy reads (``kloppy.secondspectrum.load(meta_data=..., raw_data=...)``).
KLOPPY_META_XML = "secondspectrum_meta.xml"
KLOPPY_RAW_JSONL = "secondspectrum_tracking.jsonl"


class ExportError(ValueError):
    """An output root, game or table that cannot be exported; the message names the path or the table."""


class EmptyExport(ExportError):
    """The selected games hold nothing the format carries (nothing was written)."""


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


def _has_table(layout: OutputLayout, table: str, g: ExportedGame, storage_options: dict[str, Any] | None) -> bool:
    return bool(version_files(layout, table, g.game_id, version_of(g.manifest), storage_options))


def _check_tables(
    layout: OutputLayout, games: list[ExportedGame], fmt: str, storage_options: dict[str, Any] | None
) -> None:
    for g in games:
        for table in REQUIRED_TABLES[fmt]:
            if not _has_table(layout, table, g, storage_options):
                raise ExportError(
                    f"game {g.key!r} has no {table!r} table ({layout.partition(table, g.game_id)} holds no Parquet "
                    f"file); the {fmt} export needs the tables {', '.join(REQUIRED_TABLES[fmt])}"
                )


def _read(
    layout: OutputLayout, table: str, g: ExportedGame, storage_options: dict[str, Any] | None
) -> pa.Table | None:
    """One game's rows of ``table`` (None when the game has none of its files)."""
    if not _has_table(layout, table, g, storage_options):
        return None
    return committed_dataset(layout, table, {g.game_id: version_of(g.manifest)}, storage_options).to_table()


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


@dataclass
class GameFiles:
    """What one game's export holds: files (name under the game's folder, bytes) and how many items (boxes,
    positions, calibrations) they carry; a game with 0 items has nothing to export."""

    files: list[tuple[str, bytes]]
    items: int


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


def sampling_rate(frames: pa.Table, manifest: dict[str, Any]) -> float | None:
    """Sampled frames per second of a game: the rate the run sampled at (its configured ``fps``), else the mean
    rate of the timestamps ((frames - 1) / time span, per half).

    Not the median step: at 2 fps from 25 fps video the sampled frames are 12 and 13 frames apart in turn
    (steps of 0.48 and 0.52 s), whose median would give 1.923.
    """
    fps = (manifest.get("config") or {}).get("fps")
    if isinstance(fps, (int, float)) and fps > 0:
        return float(fps)
    n, span = 0, 0.0
    for h in _halves(frames):
        t = np.sort(_floats(_sorted_frames(_half(frames, h)), "t"))
        if len(t) > 1:
            n, span = n + len(t) - 1, span + float(t[-1] - t[0])
    return round(n / span, 6) if span > 0 else None


def export_kloppy(
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None,
    allow_empty: bool = False,
) -> list[str]:
    """Write tracking data kloppy loads for the committed games of ``out`` under ``dest``; returns the files.

    Per game, under ``dest/<game_id>/``:

    - ``secondspectrum_meta.xml`` and ``secondspectrum_tracking.jsonl``: Second Spectrum's tracking format, which
      ``kloppy.secondspectrum.load(meta_data=..., raw_data=...)`` reads. It is the provider format that keeps
      what broadcast tracking has: each frame's own time (``gameClock``, seconds from the start of the half, so
      the uneven steps of sampling from 25 fps video stay exact), metres with the origin at the centre spot and
      +y up, the frame rate and the periods in the metadata. Each track of a half with a team is a player of
      that team (team 0 home, team 1 away; ``playerId`` ``<half>-<track>``, and a shirt number that is the
      player's index in ``metadata.json``, since jerseys are not read); tracks without a team (referees, people
      off the pitch) are left out, and named in ``metadata.json``. The ball is at ground level (z = 0). Nothing
      in the output says which team has the ball: ``lastTouch`` is written as null, which kloppy reads as the
      away team; ignore ``ball_owning_team``.
    - ``<half>_tracking.parquet`` and ``<half>_tracking.csv``: the wide table of :func:`kloppy_tracking_table`
      (CSV nulls are empty fields).
    - ``metadata.json``: the coordinate system, the flip, the pitch size (105 x 68 m, the calibration's pitch
      model), the sampling rate (:func:`sampling_rate`), the game key and id, the players, and per half the file
      names, frame count and tracks (with each track's most frequent team).

    Coordinate system: metres, origin at the centre spot, x along the touchlines (+x toward the goal on the
    right as seen from the main camera), **y flipped with respect to the output tables** (``y = -pitch_y``), so
    +y points up, away from the main camera, as tracking providers and kloppy's Second Spectrum system have it.
    x is not normalised to a playing direction: it stays as filmed in both halves. Frames without a valid
    calibration hold no positions. Needs the ``frames``, ``calibration`` and ``players`` tables; uses ``ball``
    when the game has it. The sampling rate must be a whole number of frames per second (the metadata's
    ``iFrameRateFps``), else ExportError.
    """
    return export(out, "kloppy", dest, game, storage_options, allow_empty)


def _jsonl_frames(tbl: pa.Table, players: dict[int, tuple[str, str, int]], offset: int) -> tuple[list[str], int]:
    """Second Spectrum lines of one half's wide table, and how many positions they hold. ``players``: track ->
    (home|away, playerId, shirt number); ``offset``: the frame index of the half's first sampled frame in the
    whole game."""
    cols = {c: tbl.column(c).to_pylist() for c in tbl.column_names}
    lines, items = [], 0
    for i in range(tbl.num_rows):
        side: dict[str, list[dict[str, Any]]] = {"home": [], "away": []}
        for track, (ground, pid, number) in players.items():
            x, y = cols[f"{track}_x"][i], cols[f"{track}_y"][i]
            if x is not None and y is not None:
                side[ground].append({"playerId": pid, "number": number, "xyz": [x, y, 0.0], "speed": None})
        bx, by = cols["ball_x"][i], cols["ball_y"][i]
        ball = {"xyz": [bx, by, 0.0], "speed": None} if bx is not None and by is not None else {"xyz": None,
                                                                                               "speed": None}
        items += len(side["home"]) + len(side["away"]) + (ball["xyz"] is not None)
        lines.append(json.dumps({
            "period": cols["period_id"][i], "frameIdx": offset + cols["frame_id"][i], "gameClock": cols["timestamp"][i],
            "live": True, "lastTouch": None, "homePlayers": side["home"], "awayPlayers": side["away"], "ball": ball,
        }, separators=(",", ":")))
    return lines, items


def _kloppy_game(layout: OutputLayout, g: ExportedGame, storage_options: dict[str, Any] | None) -> GameFiles:
    frames = _read(layout, "frames", g, storage_options)
    calibration = _read(layout, "calibration", g, storage_options)
    players = _read(layout, "players", g, storage_options)
    ball = _read(layout, "ball", g, storage_options)
    assert frames is not None and players is not None  # required tables: export() ran _check_tables
    rate = sampling_rate(frames, g.manifest)
    if rate is None or abs(rate - round(rate)) > 1e-9 or round(rate) < 1:
        raise ExportError(
            f"game {g.key!r} was sampled at {rate} frames per second; the kloppy export (Second Spectrum format) "
            "needs a whole number of frames per second (run with an integer --fps)"
        )
    fps = int(round(rate))
    pitch = PitchModel()
    files: list[tuple[str, bytes]] = []
    periods: list[dict[str, Any]] = []
    roster: list[dict[str, Any]] = []
    left_out: list[dict[str, Any]] = []
    lines: list[str] = []
    xml_periods: list[str] = []
    items, offset = 0, 0
    for h in _halves(frames):
        ph = _half(players, h)
        assert ph is not None
        tbl = kloppy_tracking_table(cast(pa.Table, _half(frames, h)), _half(calibration, h), ph, _half(ball, h))
        name = f"{h}_tracking"
        buf = io.BytesIO()
        pq.write_table(tbl, buf, compression="zstd")
        files.append((f"{name}.parquet", buf.getvalue()))
        buf = io.BytesIO()
        pacsv.write_csv(tbl, buf)
        files.append((f"{name}.csv", buf.getvalue()))
        teams = _track_teams(ph)
        tracks = sorted(int(c[:-2]) for c in tbl.column_names if c.endswith("_x") and c != "ball_x")
        half_players: dict[int, tuple[str, str, int]] = {}
        for track in tracks:
            team = teams.get(track)
            if team in (0, 1):
                number = len(roster) + 1
                pid = f"{h}-{track}"
                half_players[track] = ("home" if team == 0 else "away", pid, number)
                roster.append({"playerId": pid, "number": number, "half": h, "track": track, "team": team})
            else:
                left_out.append({"half": h, "track": track, "team": team})
        half_lines, half_items = _jsonl_frames(tbl, half_players, offset)
        lines += half_lines
        items += half_items
        fid = tbl.column("frame_id").to_pylist()
        start, end = offset + (min(fid) if fid else 0), offset + (max(fid) if fid else 0)
        xml_periods.append(f'    <period iId="{h}" iStartFrame="{start}" iEndFrame="{end}"/>')
        offset = end + 1
        ts = tbl.column("timestamp").to_numpy()
        periods.append({
            "period_id": h,
            "parquet": f"{name}.parquet",
            "csv": f"{name}.csv",
            "frames": tbl.num_rows,
            "first_frame_idx": start,
            "last_frame_idx": end,
            "start_timestamp": float(ts.min()) if len(ts) else None,
            "end_timestamp": float(ts.max()) if len(ts) else None,
            "tracks": [{"track": t, "team": team} for t, team in teams.items()],
        })
    xml = "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        "<TracabMetaData>",
        f'  <match iId="{g.game_id}" iFrameRateFps="{fps}" fPitchXSizeMeters="{pitch.length}" '
        f'fPitchYSizeMeters="{pitch.width}">',
        *xml_periods,
        "  </match>",
        "</TracabMetaData>",
        "",
    ])
    files.append((KLOPPY_META_XML, xml.encode()))
    files.append((KLOPPY_RAW_JSONL, "".join(line + "\n" for line in lines).encode()))
    meta = {
        "format": "Second Spectrum tracking (kloppy.secondspectrum.load) and wide tracking tables",
        "kloppy": {"load": "kloppy.secondspectrum.load", "meta_data": KLOPPY_META_XML, "raw_data": KLOPPY_RAW_JSONL,
                   "coordinates": "secondspectrum", "ball_owning_team": "not estimated: ignore it"},
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
            "kloppy": {"provider": "secondspectrum", "origin": "CENTER", "vertical_orientation": "BOTTOM_TO_TOP"},
        },
        "pitch": {"length": pitch.length, "width": pitch.width,
                  "x_range": [-pitch.half_length, pitch.half_length], "y_range": [-pitch.half_width, pitch.half_width]},
        "frame_rate": rate,
        "timestamps": "each frame's own time, seconds from the start of its half (not frame / frame_rate)",
        "columns": {
            "period_id": "half (1, 2)",
            "frame_id": "index of the sampled frame within the half",
            "timestamp": "seconds from the start of the half",
            "ball_x, ball_y": "ball position (null without a valid calibration or a ball on the pitch)",
            "<track>_x, <track>_y": "position of each tracked player (null without a valid calibration)",
        },
        "players": roster,
        "tracks_left_out": left_out,
        "ball": ball is not None,
        "periods": periods,
    }
    files.append((KLOPPY_METADATA, json.dumps(meta, indent=2).encode()))
    return GameFiles(files, items)


# --------------------------------------------------------------------------------------------- CCBV
def export_soccernet_ccbv(
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None,
    allow_empty: bool = False,
) -> list[str]:
    """Write SoccerNet CCBV calibration files of the committed games of ``out`` under ``dest``; returns the files.

    Per game and half: ``dest/<game_id>/<half>_field_calib_ccbv.json``, one prediction per sampled frame of the
    ``frames`` table in frame order, from the ``calibration`` table through
    :func:`matchflow.storage.soccernet.write_ccbv` (pitch-to-image homographies for the frames' native
    ``width`` x ``height``, confidence = ``score``); frames without a valid calibration get the placeholder
    homography with confidence 0. Needs the ``frames`` and ``calibration`` tables.
    """
    return export(out, "soccernet-ccbv", dest, game, storage_options, allow_empty)


def _ccbv_game(layout: OutputLayout, g: ExportedGame, storage_options: dict[str, Any] | None) -> GameFiles:
    frames = cast(pa.Table, _read(layout, "frames", g, storage_options))  # required tables: export() checked
    calibration = _read(layout, "calibration", g, storage_options)
    files, items = [], 0
    for h in _halves(frames):
        fr = _sorted_frames(cast(pa.Table, _half(frames, h)))
        sizes = sorted(set(zip(_ints(fr, "width").tolist(), _ints(fr, "height").tolist())))
        if len(sizes) != 1:
            raise ExportError(f"game {g.key!r} half {h}: the frames table holds several image sizes {sizes}")
        n = fr.num_rows
        hs = np.full((n, 9), np.nan)
        conf = np.zeros(n)
        valid = np.zeros(n, bool)
        cal = cast(pa.Table, _half(calibration, h))
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
        items += int(valid.sum())
        buf = io.BytesIO()
        write_ccbv(buf, hs, sizes[0], conf, valid)
        files.append((f"{h}{CCBV_SUFFIX}", buf.getvalue()))
    return GameFiles(files, items)


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
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None,
    allow_empty: bool = False,
) -> list[str]:
    """Write MOT Challenge files of the committed games of ``out`` under ``dest``; returns the files.

    Per game and half (every half of the ``frames`` table): ``dest/<game_id>/<half>_mot.txt``, lines as
    :func:`mot_lines` writes them, and ``dest/<game_id>/<half>_seqinfo.ini`` (MOT's sequence description: name,
    frame rate, length in sampled frames, image size), so TrackEval's MOT Challenge reader takes the folder as
    a tracker's output with one sequence per half (``<half>_mot``). Needs the ``frames`` and ``players`` tables.
    """
    return export(out, "mot", dest, game, storage_options, allow_empty)


def _mot_game(layout: OutputLayout, g: ExportedGame, storage_options: dict[str, Any] | None) -> GameFiles:
    frames = cast(pa.Table, _read(layout, "frames", g, storage_options))  # required tables: export() checked
    players = cast(pa.Table, _read(layout, "players", g, storage_options))
    rate = sampling_rate(frames, g.manifest)
    files, items = [], 0
    for h in _halves(frames):
        fr = _sorted_frames(cast(pa.Table, _half(frames, h)))
        lines = mot_lines(cast(pa.Table, _half(players, h)))
        items += len(lines)
        files.append((f"{h}_mot.txt", "".join(line + "\n" for line in lines).encode()))
        last = int(_ints(fr, "frame").max()) + 1 if fr.num_rows else 0
        width, height = (int(_ints(fr, c).max()) if fr.num_rows else 0 for c in ("width", "height"))
        ini = (f"[Sequence]\nname={h}_mot\nframeRate={rate if rate is not None else ''}\nseqLength={last}\n"
               f"imWidth={width}\nimHeight={height}\nimExt=.jpg\n")
        files.append((f"{h}_seqinfo.ini", ini.encode()))
    return GameFiles(files, items)


# --------------------------------------------------------------------------------------------- GSR
#: The labels file of a sequence (a half) in SoccerNet's game-state reconstruction layout.
GSR_LABELS = "Labels-GameState.json"
#: SoccerNet GSR's category ids of the roles the export writes (4 ball, 5 pitch and 6 camera are not written).
GSR_CATEGORIES = {"player": 1, "goalkeeper": 2, "referee": 3, "other": 7}
#: The layout version of SoccerNet's Labels-GameState.json files the export follows (``info.version``).
GSR_VERSION = "1.3"


def gsr_side(team: int | None, half: int) -> str | None:
    """SoccerNet GSR's team side of ``team`` (0, 1) in ``half``: ``"left"`` for the team defending the goal on
    the left as seen from the main camera (x = -52.5; it attacks toward +x), else ``"right"``; None without a
    team.

    Team 0 attacks toward +x in the first half and the teams swap ends at half time, so team 0 is left in
    half 1 and right in half 2 (odd halves left, even halves right); team 1 the other way round.
    """
    if team not in (0, 1):
        return None
    return "left" if (team == 0) == (half % 2 == 1) else "right"


def gsr_image_id(half: int, video_frame: int) -> str:
    """The GSR image id of a sampled frame: ``half`` x 10^9 + ``video_frame`` + 1, ten digits like SoccerNet's
    (split, sequence, frame) ids, the half first and the frame number 1-based (SoccerNet numbers frames from 1)."""
    return str(half * 10**9 + video_frame + 1)


def _f32(v: float) -> float:
    """A float32 value as the shortest float that reads back to it (JSON numbers without float32 noise)."""
    return float(_fmt(v))


def gsr_labels(
    frames: pa.Table, calibration: pa.Table | None, players: pa.Table, tracks: pa.Table | None,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One half's SoccerNet GSR labels (the content of ``Labels-GameState.json``): ``info``, ``images``,
    ``annotations`` and ``categories``.

    - ``images``: one per sampled frame, in frame order: ``image_id`` (:func:`gsr_image_id`), ``file_name``
      (``<video frame + 1>.jpg``, six digits: the frame's file when every frame of the half's video is written
      out as SoccerNet does, ``000001.jpg`` first), ``width``, ``height``, ``is_labeled`` and
      ``has_labeled_person`` (true: every sampled frame went through detection), ``has_labeled_pitch`` and
      ``has_labeled_camera`` (the frame has a valid calibration), no ignore regions.
    - ``annotations``: one per tracked person (a ``players`` row with a ``track``) in a frame with a valid
      calibration and a pitch position, ordered by frame then track: ``id`` (the image id followed by ``det``
      in five digits), ``image_id``, ``track_id`` (``track``), ``supercategory`` ``"object"``, ``category_id``
      (:data:`GSR_CATEGORIES` of the role), ``bbox_image`` (pixels: ``x``, ``y`` the top-left corner, ``w``,
      ``h``, ``x_center``, ``y_center``), ``bbox_pitch`` (metres, SoccerNet's pitch frame, as the output
      tables: ``x_bottom_middle``, ``y_bottom_middle`` = ``pitch_x``, ``pitch_y``, and the box's bottom
      corners through the frame's homography), ``attributes``: ``role`` (the track's ``tracks.cls``; ``other``
      when it has none), ``team`` (:func:`gsr_side` of the track's team, for players and goalkeepers only,
      else null) and ``jersey`` (the track's ``tracks.jersey``, null while no stage reads jerseys). Rows
      without a pitch position are left out, as SoccerNet's tools leave out detections without one.
    - ``categories``: the person categories of :data:`GSR_CATEGORIES`.

    ``info`` entries are added to the file's ``info`` (version, image folder and extension, sequence length,
    number of tracks).
    """
    fr = _sorted_frames(frames)
    n = fr.num_rows
    fid, vf = _ints(fr, "frame"), _ints(fr, "video_frame")
    half = int(fr.column("half")[0].as_py()) if n else 0
    ok = np.zeros(n, bool)
    hom = np.full((n, 3, 3), np.nan)
    if calibration is not None and calibration.num_rows:
        rows = _row_of(fid, _ints(calibration, "frame"))
        good = _bools(calibration, "valid") & (rows >= 0)
        ok[rows[good]] = True
        for i, h in enumerate(calibration.column("homography").to_pylist()):
            if good[i] and h is not None:
                hom[rows[i]] = np.reshape(h, (3, 3))
    image_ids = [gsr_image_id(half, int(v)) for v in vf]
    widths, heights = _ints(fr, "width"), _ints(fr, "height")
    images = [{
        "image_id": image_ids[i], "file_name": f"{vf[i] + 1:06d}.jpg", "height": int(heights[i]),
        "width": int(widths[i]), "is_labeled": True, "has_labeled_person": True,
        "has_labeled_pitch": bool(ok[i]), "has_labeled_camera": bool(ok[i]),
        "ignore_regions_y": [], "ignore_regions_x": [],
    } for i in range(n)]

    attrs: dict[int, tuple[str, str | None, str | None]] = {}
    if tracks is not None:
        for t, team, cls, jersey in zip(_ints(tracks, "track").tolist(), _floats(tracks, "team").tolist(),
                                        tracks.column("cls").to_pylist(), tracks.column("jersey").to_pylist()):
            role = cls if cls in GSR_CATEGORIES else "other"
            side = gsr_side(int(team), half) if role in ("player", "goalkeeper") and np.isfinite(team) else None
            attrs[int(t)] = (role, side, jersey)
    tracked = players.filter(pc.is_valid(players.column("track")))
    row, tr, det = _row_of(fid, _ints(tracked, "frame")), _ints(tracked, "track"), _ints(tracked, "det")
    x1, y1, x2, y2, px, py = (_floats(tracked, c, np.float32) for c in ("x1", "y1", "x2", "y2", "pitch_x", "pitch_y"))
    keep = (row >= 0) & np.isfinite(x1) & np.isfinite(y1) & np.isfinite(x2) & np.isfinite(y2)
    keep &= np.isfinite(px) & np.isfinite(py)
    keep[keep] = ok[row[keep]]
    annotations = []
    for i in np.lexsort((tr, row)):
        if not keep[i]:
            continue
        role, side, jersey = attrs.get(int(tr[i]), ("other", None, None))
        left, top, right, bottom = (float(v) for v in (x1[i], y1[i], x2[i], y2[i]))
        corners, w = apply_homography(hom[row[i]], np.array([[left, bottom], [right, bottom]]))
        good = np.isfinite(corners).all(axis=1) & (np.abs(w) > 1e-12)
        mid = (_f32(px[i]), _f32(py[i]))
        (xl, yl), (xr, yr) = ((_f32(c[0]), _f32(c[1])) if g else mid for c, g in zip(corners, good))
        image_id = image_ids[row[i]]
        annotations.append({
            "id": f"{image_id}{det[i]:05d}", "image_id": image_id, "track_id": int(tr[i]),
            "supercategory": "object", "category_id": GSR_CATEGORIES[role],
            "bbox_image": {"x": _f32(left), "y": _f32(top), "x_center": _f32((left + right) / 2),
                           "y_center": _f32((top + bottom) / 2), "w": _f32(right - left), "h": _f32(bottom - top)},
            "bbox_pitch": {"x_bottom_left": xl, "y_bottom_left": yl, "x_bottom_middle": mid[0],
                           "y_bottom_middle": mid[1], "x_bottom_right": xr, "y_bottom_right": yr},
            "attributes": {"role": role, "team": side, "jersey": jersey},
        })
    return {
        "info": {"version": GSR_VERSION, "im_dir": "img1", "im_ext": ".jpg", "seq_length": n,
                 "num_tracklets": len({a["track_id"] for a in annotations}), **(info or {})},
        "images": images,
        "annotations": annotations,
        "categories": [{"supercategory": "object", "id": i, "name": name} for name, i in GSR_CATEGORIES.items()],
    }


def gsr_game_labels(
    layout: OutputLayout, g: ExportedGame, storage_options: dict[str, Any] | None = None
) -> dict[int, dict[str, Any]]:
    """The GSR labels (:func:`gsr_labels`) of each half of a committed game; ExportError naming the table when
    the game lacks one the ``gsr`` format needs."""
    _check_tables(layout, [g], "gsr", storage_options)
    frames = cast(pa.Table, _read(layout, "frames", g, storage_options))
    calibration = _read(layout, "calibration", g, storage_options)
    players = cast(pa.Table, _read(layout, "players", g, storage_options))
    tracks = _read(layout, "tracks", g, storage_options)
    rate = sampling_rate(frames, g.manifest)
    return {
        h: gsr_labels(cast(pa.Table, _half(frames, h)), _half(calibration, h), cast(pa.Table, _half(players, h)),
                      _half(tracks, h), {"id": str(h), "name": f"{g.key} half {h}", "game": g.key,
                                         "game_id": g.game_id, "half": h, "frame_rate": rate})
        for h in _halves(frames)
    }


def export_gsr(
    out: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None,
    allow_empty: bool = False,
) -> list[str]:
    """Write SoccerNet game-state reconstruction labels of the committed games of ``out`` under ``dest``;
    returns the files.

    Per game and half (every half of the ``frames`` table): ``dest/<game_id>/<half>/Labels-GameState.json``,
    the labels of :func:`gsr_labels`: one sequence folder per half as in SoccerNet's GSR data set
    (``<sequence>/Labels-GameState.json``, with the frames, were they extracted, in ``img1/``). Needs the
    ``frames``, ``calibration``, ``players`` and ``tracks`` tables (the tracking and teams stages).
    """
    return export(out, "gsr", dest, game, storage_options, allow_empty)


def _gsr_game(layout: OutputLayout, g: ExportedGame, storage_options: dict[str, Any] | None) -> GameFiles:
    labels = gsr_game_labels(layout, g, storage_options)
    files = [(f"{h}/{GSR_LABELS}", json.dumps(doc, separators=(",", ":")).encode()) for h, doc in labels.items()]
    return GameFiles(files, sum(len(doc["annotations"]) for doc in labels.values()))


# --------------------------------------------------------------------------------------------- dispatch
_GAMES: dict[str, Callable[[OutputLayout, ExportedGame, dict[str, Any] | None], GameFiles]] = {
    "kloppy": _kloppy_game,
    "soccernet-ccbv": _ccbv_game,
    "mot": _mot_game,
    "gsr": _gsr_game,
}
_WHAT = {"kloppy": "player or ball position", "soccernet-ccbv": "valid calibration", "mot": "tracked box",
         "gsr": "tracked person with a pitch position"}


def export(
    out: str, fmt: str, dest: str, game: str | None = None, storage_options: dict[str, Any] | None = None,
    allow_empty: bool = False,
) -> list[str]:
    """Export the committed games of ``out`` (or only ``game``, a game key or id) as ``fmt`` under ``dest``.

    ``fmt`` is one of :data:`FORMATS`. Every selected game is checked for the tables the format needs before
    anything is written. Returns the written files (URLs or absolute paths), in order. Raises ExportError, and
    EmptyExport (having written nothing) when no selected game holds anything the format carries, unless
    ``allow_empty``. Games are exported one at a time; the files of games with nothing in them are held back
    until some game has content.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    layout = OutputLayout.at(out)
    games = committed_games(out, game, storage_options)
    dest_url = _check_dest(out, dest)
    _check_tables(layout, games, fmt, storage_options)
    written: list[str] = []
    held: list[tuple[str, bytes]] = []
    found = False

    def write(files: list[tuple[str, bytes]]) -> None:
        for url, data in files:
            fs.write_bytes_atomic(url, data, storage_options)
            written.append(url)

    for g in games:
        got = _GAMES[fmt](layout, g, storage_options)
        files = [(fs.join(dest_url, g.game_id, name), data) for name, data in got.files]
        found = found or got.items > 0
        if found or allow_empty:
            write(held + files)
            held = []
        else:
            held += files
    if not found and not allow_empty:
        which = f"game {games[0].key!r}" if len(games) == 1 else f"the {len(games)} committed games"
        raise EmptyExport(
            f"nothing to export: {which} of {out} hold no {_WHAT[fmt]}; nothing was written "
            "(--allow-empty writes the empty files)"
        )
    return written

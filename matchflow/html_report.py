"""A static HTML report of a run's output root: one self-contained page to look at (``matchflow report``).

Per committed game: a few frames of each half decoded from the game's video with the projected pitch markings
(the ``calibration`` table's ``homography_inv`` when ``valid``), the player boxes (``players``; coloured by
team, by kit-colour group or by class) and the ball (``ball``) drawn on them; a strip of top views (the
``topview_cc`` Zarr array of each half); each team's positions on a pitch drawing (``players.pitch_x``,
``pitch_y`` of ``on_field`` players); when the ``tracking`` stage ran (``players.track``), the tracks of one
minute of each half as trajectories on a pitch drawing and, for the longest tracks of each half, a strip of crops
of the person from frames spread over the track; counts and stage timings (from the manifest). Failed games are
listed with their errors.

Teams: when the ``teams`` stage ran (``players.team``, or ``tracks.team`` through ``players.track``) the dots,
boxes and trajectories are coloured by team (team 0 red, team 1 blue; team 0 attacks toward +x in the first
half, in both halves). Without it, when the mean kit colours ``color_r, color_g, color_b`` are there, the
on-field ``player`` rows of a game are clustered into two groups by k-means on those colours (RGB, k = 2), a
guess per detection: group A (the darker mean kit colour, drawn red) and group B (drawn blue); the page shows
each group's mean kit colour and says which of the two it shows. Goalkeepers and referees are kept out of the
groups.

Images are JPEG ``data:`` URIs, so the page is one file that can be mailed or committed. Every piece degrades
to a note when what it needs is missing (a table no stage wrote, an all-null column, an absent array, a video
that cannot be found or decoded). Plain functions; nothing here needs Prefect or Dask.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import cv2
import numpy as np
import pandas as pd

from matchflow.models.geometry.pitch import PitchModel, draw_polylines
from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import COMMITTED, read_all_manifests, version_of
from matchflow.storage.tables import committed_dataset

__all__ = [
    "build_report", "crop_strip", "draw_frame", "draw_positions", "draw_trajectories", "encode_image",
    "game_counts", "kit_groups", "load_game", "longest_tracks", "pick_frames", "pick_minute", "render_report",
    "spread", "team_of_rows", "topview_strip", "track_paths",
]

_log = logging.getLogger(__name__)

#: RGB colours of the drawings.
LINE_COLOUR = (0, 255, 255)
CLASS_COLOURS = {"player": (255, 220, 0), "goalkeeper": (255, 128, 0), "referee": (255, 0, 255),
                 "other": (200, 200, 200)}
GROUP_COLOURS = ((255, 60, 60), (60, 130, 255))  # box colour of team / group A, B
BALL_COLOUR = (255, 255, 255)
#: Columns read per table (the heavy ``poses.keypoints`` is never read).
_COLUMNS = {
    "frames": ["half", "frame", "t", "video_frame", "width", "height"],
    "calibration": ["half", "frame", "homography_inv", "score", "valid"],
    "players": ["half", "frame", "t", "det", "x1", "y1", "x2", "y2", "score", "cls", "pitch_x", "pitch_y",
                "on_field", "color_r", "color_g", "color_b", "team", "track"],
    "ball": ["half", "frame", "x", "y", "score"],
    "graph_edges": ["half", "frame"],
    "tracks": ["half", "track", "first_frame", "last_frame", "frames", "team", "cls", "pitch_x", "pitch_y"],
}


# ------------------------------------------------------------------------------------------------ loading
@dataclass
class GameData:
    """What the report shows of one game: its manifest, its tables (empty when absent) and notes."""

    game_id: str
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return str(self.manifest.get("game", self.game_id))


def load_game(layout: OutputLayout, game_id: str, manifest: dict[str, Any],
              storage_options: dict[str, Any] | None = None) -> GameData:
    """The tables of one committed game as data frames (a table that cannot be read: empty, with a note)."""
    data = GameData(game_id, manifest)
    for table, cols in _COLUMNS.items():
        try:
            ds = committed_dataset(layout, table, {game_id: version_of(manifest)}, storage_options)
            present = [c for c in cols if c in ds.schema.names]
            df = ds.to_table(columns=present).to_pandas()
        except Exception as exc:  # a damaged table must not take the page down
            data.notes.append(f"table {table} could not be read: {type(exc).__name__}: {exc}")
            df = pd.DataFrame({c: [] for c in cols})
        for c in cols:
            if c not in df.columns:
                df[c] = pd.Series([None] * len(df), dtype=object)
        if "cls" in df.columns:
            df["cls"] = df["cls"].astype(object)
        data.tables[table] = df
    return data


def _has_values(df: pd.DataFrame, *cols: str) -> bool:
    return len(df) > 0 and all(c in df.columns and df[c].notna().any() for c in cols)


def team_of_rows(players: pd.DataFrame, tracks: pd.DataFrame | None = None) -> pd.Series:
    """The team of each ``players`` row (float, NaN: none): ``players.team`` where set, else the ``tracks.team``
    of the row's (half, track) (the teams stage writes both, one team per track)."""
    team = pd.to_numeric(players["team"], errors="coerce") if "team" in players else \
        pd.Series(np.nan, index=players.index)
    team = team.astype(float)
    if tracks is None or not _has_values(tracks, "team") or not _has_values(players, "track"):
        return team
    known = tracks.dropna(subset=["team", "track"])
    by = {(int(h), int(k)): float(v) for h, k, v in zip(known["half"], known["track"], known["team"])}
    trk = pd.to_numeric(players["track"], errors="coerce")
    from_tracks = [by.get((int(h), int(k)), np.nan) if pd.notna(k) else np.nan
                   for h, k in zip(players["half"], trk)]
    return team.fillna(pd.Series(from_tracks, index=players.index, dtype=float))


# ------------------------------------------------------------------------------------------------ counts
def game_counts(data: GameData) -> dict[str, Any]:
    """Counts of one game: sampled frames, player rows, players per frame, frames with a ball, calibration
    valid share, on-field players, graph edges (None where the table or column is absent or all null)."""
    t = data.tables
    frames = t["frames"]
    n_frames = int(len(frames))
    players, ball, cal = t["players"], t["ball"], t["calibration"]
    out: dict[str, Any] = {
        "frames": n_frames,
        "halves": sorted(int(h) for h in frames["half"].dropna().unique()) if n_frames else [],
        "players": int(len(players)) if len(players) or n_frames else None,
        "players_per_frame": (len(players) / n_frames) if n_frames and len(players) else None,
        "ball_frames": int(ball[["half", "frame"]].drop_duplicates().shape[0]) if len(ball) else None,
        "ball_share": None,
        "calibration_frames": int(len(cal)) if len(cal) else None,
        "calibration_valid": int(cal["valid"].fillna(False).astype(bool).sum()) if len(cal) else None,
        "calibration_valid_share": None,
        "on_field": int(players["on_field"].fillna(False).astype(bool).sum())
        if _has_values(players, "on_field") else None,
        "positions": int(players[["pitch_x", "pitch_y"]].notna().all(axis=1).sum())
        if _has_values(players, "pitch_x", "pitch_y") else None,
        "graph_edges": int(len(t["graph_edges"])) if len(t["graph_edges"]) else None,
        "tracks": int(players[["half", "track"]].dropna().drop_duplicates().shape[0])
        if _has_values(players, "track") else None,
    }
    if out["ball_frames"] is not None and n_frames:
        out["ball_share"] = out["ball_frames"] / n_frames
    if out["calibration_frames"]:
        out["calibration_valid_share"] = out["calibration_valid"] / out["calibration_frames"]
    if out["players"] == 0 and "detection" not in (data.manifest.get("stages") or {}):
        out["players"] = None  # no detection stage: not "zero players" but "not computed"
    return out


# ------------------------------------------------------------------------------------------------ images
def encode_image(rgb: np.ndarray, max_width: int = 640, quality: int = 70) -> str:
    """A ``data:image/jpeg;base64`` URI of an RGB image, downscaled to at most ``max_width`` pixels wide."""
    img = np.ascontiguousarray(rgb)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[1] > max_width:
        h = max(1, round(img.shape[0] * max_width / img.shape[1]))
        img = cv2.resize(img, (max_width, h), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _homography(values: Any) -> np.ndarray | None:
    if values is None:
        return None
    try:
        m = np.asarray(list(values), dtype=float)
    except (TypeError, ValueError):
        return None
    if m.size != 9 or not np.isfinite(m).all():
        return None
    m = m.reshape(3, 3)
    scale = np.abs(m).max()
    if not scale > 0 or abs(np.linalg.det(m / scale)) < 1e-12:
        return None  # degenerate: nothing sensible to draw
    return m


def draw_frame(
    image: np.ndarray,
    homography_inv: Any = None,
    players: pd.DataFrame | None = None,
    ball: tuple[float, float] | None = None,
    *,
    native_size: tuple[int, int] | None = None,
    width: int = 640,
    box_colours: list[tuple[int, int, int]] | None = None,
    pitch: PitchModel | None = None,
) -> np.ndarray:
    """``image`` (RGB) scaled to ``width`` pixels wide with the pitch markings projected through
    ``homography_inv`` (pitch metres to native pixels, 9 values or 3x3; None: no lines), the boxes of
    ``players`` (columns x1, y1, x2, y2 in native pixels; ``box_colours`` per row, default by ``cls``) and the
    ``ball`` (x, y native pixels) drawn on it. ``native_size`` (width, height) is the size the pixel
    coordinates refer to (default: the image's own)."""
    h0, w0 = image.shape[:2]
    nw, nh = native_size or (w0, h0)
    s = width / w0
    out = cv2.resize(image, (width, max(1, round(h0 * s))), interpolation=cv2.INTER_AREA) if width != w0 \
        else image.copy()
    sx, sy = width / nw, out.shape[0] / nh  # native pixels -> display pixels
    m = _homography(homography_inv)
    if m is not None:
        try:
            disp = np.diag([sx, sy, 1.0]) @ m
            mask = (pitch or PitchModel()).line_mask(disp, (out.shape[1], out.shape[0]), thickness_px=2)
            out[mask > 0] = LINE_COLOUR
        except Exception as exc:  # a degenerate homography: no lines, not a crash
            _log.warning("pitch lines not drawn: %s", exc)
    if players is not None and len(players):
        boxes = players[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float)
        cls = players["cls"].astype(object).tolist() if "cls" in players else ["other"] * len(players)
        for i, (b, c) in enumerate(zip(boxes, cls)):
            if not np.isfinite(b).all():
                continue
            colour = box_colours[i] if box_colours is not None else CLASS_COLOURS.get(str(c), CLASS_COLOURS["other"])
            p1 = (int(round(b[0] * sx)), int(round(b[1] * sy)))
            p2 = (int(round(b[2] * sx)), int(round(b[3] * sy)))
            cv2.rectangle(out, p1, p2, tuple(int(v) for v in colour), 1, cv2.LINE_8)
    if ball is not None and np.isfinite(ball).all():
        c = (int(round(ball[0] * sx)), int(round(ball[1] * sy)))
        cv2.circle(out, c, 7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.circle(out, c, 7, BALL_COLOUR, 2, cv2.LINE_AA)
    return out


def pick_frames(frames: pd.DataFrame, calibration: pd.DataFrame | None = None, per_half: int = 4) -> pd.DataFrame:
    """``per_half`` sampled frames of each half, spread over it: the half is cut into ``per_half`` equal
    segments and the frame nearest each segment's middle is taken, preferring one with a valid calibration
    within the segment. Returns rows of ``frames`` (half, frame, t, video_frame...), sorted."""
    if not len(frames) or per_half <= 0:
        return frames.iloc[:0]
    valid: set[tuple[int, int]] = set()
    if calibration is not None and len(calibration) and calibration["valid"].notna().any():
        ok = calibration[calibration["valid"].fillna(False).astype(bool)]
        valid = set(zip(ok["half"].astype(int), ok["frame"].astype(int)))
    picked = []
    for half, g in frames.sort_values(["half", "frame"]).groupby("half", sort=True):
        g = g.reset_index(drop=True)
        n = len(g)
        k = min(per_half, n)
        for seg in np.array_split(np.arange(n), k):
            mid = seg[len(seg) // 2]
            cands = [i for i in seg if (int(half), int(g.frame[i])) in valid]
            i = min(cands, key=lambda j: abs(j - mid)) if cands else mid
            picked.append(g.iloc[i])
    return pd.DataFrame(picked).reset_index(drop=True)


def kit_groups(players: pd.DataFrame, seed: int = 0, max_fit: int = 20000) -> tuple[np.ndarray, list[tuple[int, int, int]], str]:
    """Group labels (N,) int (-1: no group) for ``players`` rows, the mean colour of each group, and how
    the groups were made: ``"team"`` (the ``team`` column: labels are the teams 0 and 1), ``"kit colour
    k-means"`` (two clusters of the mean kit colours of on-field ``player`` rows), or ``""`` (neither available:
    every label -1)."""
    n = len(players)
    labels = np.full(n, -1, dtype=int)
    rgb_cols = ["color_r", "color_g", "color_b"]
    have_rgb = _has_values(players, *rgb_cols)
    if _has_values(players, "team"):
        team = pd.to_numeric(players["team"], errors="coerce")
        present = sorted(int(v) for v in team.dropna().unique())
        teams = [0, 1] if set(present) <= {0, 1} else present[:2]
        colours = []
        for j, tv in enumerate(teams):
            sel = (team == tv).to_numpy()
            labels[sel] = j
            if have_rgb:
                c = players.loc[sel, rgb_cols].astype(float).mean().to_numpy()
                colours.append(tuple(int(round(v)) for v in c) if np.isfinite(c).all() else GROUP_COLOURS[j])
            else:
                colours.append(GROUP_COLOURS[j])
        return labels, cast("list[tuple[int, int, int]]", colours), "team"
    if not have_rgb:
        return labels, [], ""
    rgb = players[rgb_cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    cls = players["cls"].astype(object).astype(str).to_numpy() if "cls" in players else np.full(n, "player")
    on = players["on_field"].fillna(True).astype(bool).to_numpy() if "on_field" in players else np.ones(n, bool)
    usable = (cls == "player") & on & np.isfinite(rgb).all(axis=1)
    idx = np.flatnonzero(usable)
    if len(idx) < 2 or len(np.unique(rgb[idx], axis=0)) < 2:
        return labels, [], ""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    fit = idx if len(idx) <= max_fit else rng.choice(idx, max_fit, replace=False)
    km = KMeans(n_clusters=2, n_init=4, random_state=seed).fit(rgb[fit])
    lab = km.predict(rgb[idx])
    centres = km.cluster_centers_
    # a stable order: group A is the darker kit
    order = np.argsort(centres.sum(axis=1))
    remap = np.empty(2, int)
    remap[order] = np.arange(2)
    labels[idx] = remap[lab]
    colours = [tuple(int(round(v)) for v in centres[order[j]]) for j in range(2)]
    return labels, cast("list[tuple[int, int, int]]", colours), "kit colour k-means"


_PX_PER_M = 5.0
_MARGIN_M = 5.0


def pitch_canvas(pitch: PitchModel | None = None, px_per_m: float = _PX_PER_M) -> tuple[np.ndarray, np.ndarray]:
    """A top-down pitch drawing (RGB; +x right, +y down: the main camera's side at the bottom) and the 3x3
    matrix from pitch metres to its pixels."""
    pitch = pitch or PitchModel()
    w = int(round((pitch.length + 2 * _MARGIN_M) * px_per_m))
    h = int(round((pitch.width + 2 * _MARGIN_M) * px_per_m))
    m = np.array([[px_per_m, 0, w / 2], [0, px_per_m, h / 2], [0, 0, 1.0]])
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (34, 110, 50)
    draw_polylines(img, m, list(pitch.lines().values()), (235, 235, 235), 1, True)
    return img, m


def draw_positions(
    xy: np.ndarray, colours: list[tuple[int, int, int]] | np.ndarray, *, ring: tuple[int, int, int] | None = None,
    pitch: PitchModel | None = None, px_per_m: float = _PX_PER_M, radius: int = 3, max_points: int = 20000,
    seed: int = 0,
) -> np.ndarray:
    """A pitch drawing with a dot at each (pitch_x, pitch_y) of ``xy`` (N, 2) metres, filled with its colour
    (one per row, or one for all), outlined with ``ring``. At most ``max_points`` (a random subset) are drawn."""
    img, m = pitch_canvas(pitch, px_per_m)
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    cols = np.asarray(colours, dtype=int).reshape(-1, 3)
    if len(cols) == 1:
        cols = np.repeat(cols, len(xy), axis=0)
    keep = np.flatnonzero(np.isfinite(xy).all(axis=1))
    if len(keep) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(keep, max_points, replace=False))
    for (x, y), c in zip(_canvas_px(xy[keep], m), cols[keep]):
        cv2.circle(img, (x, y), radius, tuple(int(v) for v in c), -1, cv2.LINE_AA)
        if ring is not None:
            cv2.circle(img, (x, y), radius, ring, 1, cv2.LINE_AA)
    return img


def _canvas_px(xy: np.ndarray, m: np.ndarray) -> list[tuple[int, int]]:
    """Pitch metres (N, 2) to the integer pixels of a :func:`pitch_canvas` drawing (``m`` its matrix)."""
    px = np.asarray(xy, dtype=float).reshape(-1, 2) @ m[:2, :2].T + m[:2, 2]
    return [(int(x), int(y)) for x, y in np.round(px).astype(int)]


def draw_trajectories(
    paths: list[np.ndarray], colours: list[tuple[int, int, int]], roles: list[str] | None = None, *,
    pitch: PitchModel | None = None, px_per_m: float = _PX_PER_M, thickness: int = 2,
) -> np.ndarray:
    """A pitch drawing with each path of ``paths`` ((K, 2) pitch metres in time order; non-finite points left
    out) as a polyline in its colour, marked where it ends by its role (``roles``, default player): a dot for a
    player, a square ringed white and a thicker line for a goalkeeper, a diamond for a referee, a small dot for
    anyone else."""
    img, m = pitch_canvas(pitch, px_per_m)
    roles = roles if roles is not None else ["player"] * len(paths)
    for path, colour, role in zip(paths, colours, roles):
        xy = np.asarray(path, dtype=float).reshape(-1, 2)
        xy = xy[np.isfinite(xy).all(axis=1)]
        if not len(xy):
            continue
        c = tuple(int(v) for v in colour)
        draw_polylines(img, m, [xy], c, thickness + (role == "goalkeeper"), True)
        end = _canvas_px(xy[-1:], m)[0]
        if role == "goalkeeper":
            cv2.rectangle(img, (end[0] - 4, end[1] - 4), (end[0] + 4, end[1] + 4), c, -1, cv2.LINE_8)
            cv2.rectangle(img, (end[0] - 4, end[1] - 4), (end[0] + 4, end[1] + 4), (255, 255, 255), 1, cv2.LINE_8)
        elif role == "referee":
            cv2.drawMarker(img, end, c, cv2.MARKER_DIAMOND, 10, 2, cv2.LINE_8)
        else:
            cv2.circle(img, end, 3 if role == "player" else 2, c, -1, cv2.LINE_AA)
            cv2.circle(img, end, 3 if role == "player" else 2, (20, 20, 20), 1, cv2.LINE_AA)
    return img


def spread(n: int, k: int) -> list[int]:
    """At most ``k`` indices of ``range(n)`` spread evenly over it, the first and the last included."""
    if n <= 0 or k <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, min(k, n))})


def crop_strip(
    images: list[np.ndarray | None], boxes: np.ndarray, *, native_sizes: list[tuple[int, int] | None] | None = None,
    tile: tuple[int, int] = (80, 40), gap: int = 2, pad: float = 0.15,
    background: tuple[int, int, int] = (235, 235, 235),
) -> np.ndarray:
    """One tile (``tile`` = height, width) per image side by side, ``gap`` white pixels between them: the box
    (x1, y1, x2, y2 in the native pixels of ``native_sizes`` (width, height), default the image's own) widened
    by ``pad`` of its size on each side, cut out of its image (RGB) and scaled to fit the tile, centred on
    ``background``. A missing image or an empty box leaves its tile blank."""
    th, tw = tile
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    strip = np.full((th, max(0, len(images) * (tw + gap) - gap), 3), 255, np.uint8)
    for j, (img, b) in enumerate(zip(images, boxes)):
        x0 = j * (tw + gap)
        strip[:, x0:x0 + tw] = background
        if img is None or not np.isfinite(b).all() or b[2] <= b[0] or b[3] <= b[1]:
            continue
        h, w = img.shape[:2]
        nat = native_sizes[j] if native_sizes is not None else None
        sx, sy = (w / nat[0], h / nat[1]) if nat else (1.0, 1.0)
        bw, bh = b[2] - b[0], b[3] - b[1]
        x1, x2 = (int(np.clip(round(v * sx), 0, w)) for v in (b[0] - pad * bw, b[2] + pad * bw))
        y1, y2 = (int(np.clip(round(v * sy), 0, h)) for v in (b[1] - pad * bh, b[3] + pad * bh))
        if x2 <= x1 or y2 <= y1:
            continue
        crop = img[y1:y2, x1:x2]
        s = min(tw / crop.shape[1], th / crop.shape[0])
        cw, ch = min(tw, max(1, round(crop.shape[1] * s))), min(th, max(1, round(crop.shape[0] * s)))
        fit = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        oy, ox = (th - ch) // 2, (tw - cw) // 2
        strip[oy:oy + ch, x0 + ox:x0 + ox + cw] = fit
    return strip


def pick_minute(rows: pd.DataFrame, minute: int | None = None) -> tuple[int | None, dict[int, int]]:
    """The minute of a half to draw the tracks of (``minute`` when given, else the minute with the most tracked
    people, the earliest of equals) and the tracked people per minute: distinct ``track`` values of ``rows``
    (one half's ``players``, with ``t`` in seconds from the half's start) with a pitch position. None: no
    tracked position in the half."""
    xy = rows[["pitch_x", "pitch_y"]].apply(pd.to_numeric, errors="coerce")
    trk = pd.to_numeric(rows["track"], errors="coerce")
    t = pd.to_numeric(rows["t"], errors="coerce")
    ok = xy.notna().all(axis=1) & trk.notna() & t.notna()
    if not ok.any():
        return minute, {}
    per = pd.DataFrame({"m": (t[ok] // 60).astype(int), "track": trk[ok]}).groupby("m")["track"].nunique()
    counts = {int(k): int(v) for k, v in per.items()}
    if minute is not None:
        return minute, counts
    return max(counts, key=lambda k: (counts[k], -k)), counts


def track_paths(rows: pd.DataFrame) -> dict[int, np.ndarray]:
    """Per track of ``rows`` (``players`` rows of one half), its pitch positions (K, 2) in frame order, rows
    without a position left out."""
    xy = rows[["pitch_x", "pitch_y"]].apply(pd.to_numeric, errors="coerce")
    trk = pd.to_numeric(rows["track"], errors="coerce")
    ok = xy.notna().all(axis=1) & trk.notna()
    df = pd.DataFrame({"track": trk[ok].astype(int), "frame": pd.to_numeric(rows["frame"])[ok],
                       "x": xy["pitch_x"][ok], "y": xy["pitch_y"][ok]}).sort_values(["track", "frame"], kind="stable")
    return {int(k): g[["x", "y"]].to_numpy(dtype=float) for k, g in df.groupby("track", sort=True)}


def longest_tracks(rows: pd.DataFrame, tracks: pd.DataFrame | None = None, n: int = 6) -> list[int]:
    """The ``n`` tracks of one half with the most detections (``tracks.frames`` when that table has them, else
    the ``players`` rows ``rows`` per track; ties by track number), of those with a box in ``rows``."""
    trk = pd.to_numeric(rows["track"], errors="coerce")
    boxed = rows[["x1", "y1", "x2", "y2"]].apply(pd.to_numeric, errors="coerce").notna().all(axis=1)
    counts = trk[boxed & trk.notna()].astype(int).value_counts()
    size = {int(k): int(v) for k, v in counts.items()}
    if tracks is not None and _has_values(tracks, "track", "frames"):
        for k, f in zip(tracks["track"], tracks["frames"]):
            if pd.notna(k) and pd.notna(f) and int(k) in size:
                size[int(k)] = int(f)
    return sorted(size, key=lambda k: (-size[k], k))[:max(0, n)]


def topview_strip(array: Any, n: int = 6, gap: int = 4) -> tuple[np.ndarray, list[int]] | None:
    """``n`` top views (T, H, W, 3) uint8 spread over the half, side by side with ``gap`` white pixels between
    them, and the sampled frames they are; None when the array is empty or not of that shape."""
    shape = tuple(getattr(array, "shape", ()))
    if len(shape) != 4 or shape[0] == 0 or shape[3] != 3:
        return None
    idx = spread(shape[0], n)
    tiles = [np.asarray(array[i], dtype=np.uint8) for i in idx]
    h, w = tiles[0].shape[:2]
    strip = np.full((h, len(tiles) * (w + gap) - gap, 3), 255, np.uint8)
    for j, t in enumerate(tiles):
        strip[:, j * (w + gap): j * (w + gap) + w] = t
    return strip, idx


# ------------------------------------------------------------------------------------------------ videos
def _video_for(data: GameData, half: int, corpus_games: dict[str, Any] | None,
               storage_options: dict[str, Any] | None) -> tuple[str | None, str]:
    """(path, note): the video of a half, from --corpus first (when given), then the manifest's path."""
    candidates = []
    if corpus_games is not None:
        game = corpus_games.get(data.key)
        if game is not None and half in game.halves:
            candidates.append(game.halves[half])
    entry = (data.manifest.get("halves") or {}).get(str(half)) or {}
    if entry.get("path"):
        candidates.append(str(entry["path"]))
    for path in candidates:
        try:
            if fs.exists(path, storage_options):
                return path, ""
        except Exception:  # unreachable storage: try the next candidate
            continue
    if not candidates:
        return None, (f"no video known for half {half}: the manifest records none and "
                      + ("the corpus has no such game" if corpus_games is not None else "no --corpus was given"))
    return None, f"video of half {half} not found ({', '.join(dict.fromkeys(candidates))}); give --corpus"


def _decode(path: str, video_frames: list[int], storage_options: dict[str, Any] | None) -> dict[int, np.ndarray]:
    from matchflow.video import iter_frames

    idx = np.array(sorted(set(int(v) for v in video_frames)), dtype=np.int64)
    out: dict[int, np.ndarray] = {}
    for batch, frames in iter_frames(path, idx, 8, storage_options, num_threads=1):
        for i, f in zip(batch, frames):
            out[int(i)] = np.array(f)
    return out


# ------------------------------------------------------------------------------------------------ page
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;padding:1em 2em;
color:#1d2327;background:#fafafa}
h1{margin-bottom:.2em} h2{border-top:3px solid #2e7d32;padding-top:.6em;margin-top:2em} h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccd;padding:3px 8px;text-align:left;font-size:.92em}
th{background:#e8eef0} td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:10px;align-items:start}
.row{display:flex;flex-wrap:wrap;gap:2.5em;align-items:flex-start} .row>div{max-width:620px}
figure{margin:0;background:#fff;border:1px solid #dde;padding:4px}
figure img{display:block;width:100%;height:auto} figcaption{font-size:.82em;color:#445;padding-top:3px}
.note{background:#fff6d8;border-left:4px solid #e0a800;padding:4px 10px;margin:.4em 0;font-size:.92em}
.err{background:#fdecea;border-left:4px solid #c62828;padding:4px 10px;white-space:pre-wrap;font-family:monospace;font-size:.85em}
.sw{display:inline-block;width:.9em;height:.9em;border:1px solid #333;vertical-align:middle;margin:0 3px}
.small{font-size:.85em;color:#556}
.crops{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start} .crops img{width:auto;max-width:100%}
"""

# After load, every <img> gets data-natural-width/height (0 when its image did not decode) and <body> the
# number of images checked: a headless browser's DOM dump then says whether the images render.
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute('data-natural-width', imgs[i].naturalWidth);
    imgs[i].setAttribute('data-natural-height', imgs[i].naturalHeight);
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) bad++;
  }
  document.body.setAttribute('data-images-checked', imgs.length);
  document.body.setAttribute('data-images-broken', bad);
});
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _swatch(rgb: tuple[int, int, int]) -> str:
    return f'<span class="sw" style="background:rgb({int(rgb[0])},{int(rgb[1])},{int(rgb[2])})"></span>'


def _fmt(v: Any, pct: bool = False, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "&ndash;"
    if pct:
        return f"{100 * v:.{digits}f}%"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return _e(v)


def _figure(uri: str, caption: str, alt: str) -> str:
    return f'<figure><img src="{uri}" alt="{_e(alt)}"><figcaption>{caption}</figcaption></figure>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _frames_section(data: GameData, corpus_games: dict[str, Any] | None, storage_options: dict[str, Any] | None,
                    per_half: int, width: int, quality: int, labels: np.ndarray, group_box: list) -> str:
    t = data.tables
    frames, cal, players, ball = t["frames"], t["calibration"], t["players"], t["ball"]
    parts = ["<h3>Frames</h3>"]
    if not len(frames):
        return parts[0] + _note("no frames table for this game: nothing to show")
    if not len(cal):
        parts.append(_note("no calibration table (stage calibration not run): frames without pitch lines"))
    elif not cal["valid"].fillna(False).astype(bool).any():
        parts.append(_note("no frame of this game has a valid calibration: frames without pitch lines"))
    if "detection" not in (data.manifest.get("stages") or {}) and not len(players):
        parts.append(_note("no players or ball tables (stage detection not run): frames without boxes"))
    chosen = pick_frames(frames, cal, per_half)
    parts.append(f'<p class="small">{per_half} frame(s) per half: the middle frame of each of {per_half} equal parts '
                 "of the half, or the frame nearest to it with a valid calibration within that part.</p>")
    cal_by = {(int(r.half), int(r.frame)): r for r in cal.itertuples(index=False)} if len(cal) else {}
    ball_by: dict[tuple[int, int], tuple[float, float, float]] = {}
    if len(ball):
        for r in ball.sort_values("score", ascending=False).itertuples(index=False):
            ball_by.setdefault((int(r.half), int(r.frame)), (float(r.x), float(r.y), float(r.score)))
    players = players.assign(_label=labels) if len(players) else players
    for half, g in chosen.groupby("half", sort=True):
        half = int(half)
        path, why = _video_for(data, half, corpus_games, storage_options)
        decoded: dict[int, np.ndarray] = {}
        if path is not None:
            try:
                decoded = _decode(path, g["video_frame"].astype(int).tolist(), storage_options)
            except Exception as exc:  # a broken video gives a note, not a crash
                why = f"video of half {half} could not be decoded: {type(exc).__name__}: {exc}"
        if why:
            parts.append(_note(why))
        figs = []
        for r in g.itertuples(index=False):
            img = decoded.get(int(r.video_frame))
            if img is None:
                continue
            key = (half, int(r.frame))
            c = cal_by.get(key)
            valid = bool(c.valid) if c is not None and c.valid is not None and not pd.isna(c.valid) else False
            hinv = c.homography_inv if (c is not None and valid) else None
            sel = players[(players["half"] == half) & (players["frame"] == int(r.frame))] if len(players) else players
            colours = None
            if len(sel) and group_box:
                colours = [group_box[int(lb)] if lb >= 0 else CLASS_COLOURS.get(str(cl), CLASS_COLOURS["other"])
                           for lb, cl in zip(sel["_label"], sel["cls"].astype(object))]
            b = ball_by.get(key)
            nat = (int(r.width), int(r.height)) if pd.notna(r.width) and pd.notna(r.height) else None
            drawn = draw_frame(img, hinv, sel if len(sel) else None, (b[0], b[1]) if b else None,
                               native_size=nat, width=min(width, img.shape[1]), box_colours=colours)
            cap = [f"half {half} &middot; frame {int(r.frame)} &middot; t = {float(r.t):.1f} s"]
            if c is not None:
                score = float(c.score) if c.score is not None and pd.notna(c.score) else float("nan")
                cap.append(f"calibration {'valid' if valid else 'not valid'} (score {score:.2f})")
            if len(t["players"]) or "detection" in (data.manifest.get("stages") or {}):
                cap.append(f"{len(sel)} people")
                cap.append(f"ball {b[2]:.2f}" if b else "no ball")
            figs.append(_figure(encode_image(drawn, width, quality), " &middot; ".join(cap),
                                f"{data.key} half {half} frame {int(r.frame)}"))
        if figs:
            parts.append('<div class="grid">' + "".join(figs) + "</div>")
    return "".join(parts)


def _topview_section(layout: OutputLayout, data: GameData, halves: list[int], storage_options: dict[str, Any] | None,
                     quality: int) -> str:
    parts = ["<h3>Top views</h3>"]
    from matchflow.storage import arrays as zarr_io

    url = layout.zarr(data.game_id, version_of(data.manifest))
    try:
        group = zarr_io.open_game_group(url, storage_options, mode="r")
    except Exception:  # absent group
        return parts[0] + _note("no Zarr group for this game: no top views")
    shown = False
    for half in halves or [1, 2]:
        try:
            arr = group[f"{half}/topview_cc"]
        except (KeyError, Exception):
            continue
        try:
            got = topview_strip(arr)
        except Exception as exc:
            parts.append(_note(f"topview_cc of half {half} could not be read: {exc}"))
            continue
        if got is None:
            parts.append(_note(f"topview_cc of half {half} is empty"))
            continue
        strip, idx = got
        if not strip.any():
            parts.append(_note(f"topview_cc of half {half} holds only zeros (nothing written)"))
        cap = f"half {half}: topview_cc of sampled frames {', '.join(str(i) for i in idx)}"
        parts.append(_figure(encode_image(strip, 1400, quality), cap, f"top views half {half}"))
        shown = True
    if not shown:
        parts.append(_note("no topview_cc array (stage topview not run)"))
    return "".join(parts)


def _positions_section(data: GameData, labels: np.ndarray, colours: list, how: str, quality: int) -> str:
    players = data.tables["players"]
    parts = ["<h3>Positions on the pitch</h3>"]
    if not _has_values(players, "pitch_x", "pitch_y"):
        why = ("no players table" if not len(players)
               else "players.pitch_x/pitch_y are all null (stage localization not run, or no valid calibration)")
        return parts[0] + _note(f"no positions: {why}")
    xy = players[["pitch_x", "pitch_y"]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    on = players["on_field"].fillna(False).astype(bool).to_numpy() if _has_values(players, "on_field") \
        else np.isfinite(xy).all(axis=1)
    cls = players["cls"].astype(object).astype(str).to_numpy()
    sel = on & np.isfinite(xy).all(axis=1)
    have_rgb = _has_values(players, "color_r", "color_g", "color_b")
    rgb = (players[["color_r", "color_g", "color_b"]].apply(pd.to_numeric, errors="coerce").fillna(128)
           .to_numpy(dtype=float) if have_rgb else None)
    figs = []
    if how:
        what = ("from the teams stage (players.team)" if how == "team"
                else "guessed by k-means (k = 2) on the mean kit colours (color_r/g/b) of the on-field players "
                     "(goalkeepers and referees left out)")
        parts.append(f'<p class="small">Teams {_e(what)}; each dot is one on-field detection over the whole game, '
                     "in its group's colour (the colour of its boxes on the frames above).</p>")
        for j, c in enumerate(colours):
            m = sel & (labels == j)
            name = _group_name(j, how)
            img = draw_positions(xy[m], [GROUP_COLOURS[j]], ring=(20, 20, 20))
            figs.append(_figure(encode_image(img, img.shape[1], quality),
                                f"{_swatch(GROUP_COLOURS[j])} {_e(name)}: {int(m.sum())} positions; mean kit colour "
                                f"{_swatch(c)} rgb({c[0]}, {c[1]}, {c[2]})", name))
        rest = sel & (labels < 0)
    else:
        parts.append('<p class="small">No team and no kit colours: all on-field positions, coloured by class.</p>')
        rest = sel
    if rest.any():
        if have_rgb and how:
            assert rgb is not None  # rgb is None only without have_rgb
            cols = rgb[rest]
            cap = "goalkeepers, referees and others, each dot in its mean kit colour"
        else:
            cols = [CLASS_COLOURS.get(c, CLASS_COLOURS["other"]) for c in cls[rest]]
            cap = "on-field positions: " + " ".join(f"{_swatch(v)}{_e(k)}" for k, v in CLASS_COLOURS.items())
        img = draw_positions(xy[rest], cols, ring=(0, 0, 0))
        figs.append(_figure(encode_image(img, img.shape[1], quality), f"{cap}: {int(rest.sum())} positions",
                            "other positions"))
    if not sel.any():
        return "".join(parts) + _note("no on-field player has a position")
    parts.append('<div class="grid">' + "".join(figs) + "</div>")
    return "".join(parts)


def _group_name(label: int, how: str) -> str:
    if not how or label not in (0, 1):
        return "no team"
    return f"team {label}" if how == "team" else f"group {'AB'[label]}"


def _teams_note(how: str) -> str:
    """The sentence that says where the page's teams come from."""
    if how == "team":
        text = ("Teams shown: from the teams stage (players.team, one team per track): team 0 "
                + _swatch(GROUP_COLOURS[0]) + ", team 1 " + _swatch(GROUP_COLOURS[1])
                + "; team 0 attacks toward +x in the first half, in both halves; referees and people off the field "
                  "have no team.")
    elif how:
        text = ("Teams shown: a guess, not the teams stage (which this run did not have): the on-field players' "
                "detections grouped by k-means on their kit colours, group A " + _swatch(GROUP_COLOURS[0])
                + " (the darker kit) and group B " + _swatch(GROUP_COLOURS[1]) + "; detection by detection, so "
                  "one person may change group.")
    else:
        text = "Teams shown: none (no teams stage and no kit colours): boxes and dots by class."
    return f'<p class="small">{text}</p>'


def _tracks_section(data: GameData, corpus_games: dict[str, Any] | None, storage_options: dict[str, Any] | None,
                    quality: int, labels: np.ndarray, how: str, minute: int | None, per_half: int,
                    crops: int) -> str:
    players, tracks, frames = data.tables["players"], data.tables["tracks"], data.tables["frames"]
    parts = ["<h3>Tracks</h3>"]
    if not _has_values(players, "track"):
        return parts[0] + _note("no tracks: players.track is all null (stage tracking not run)")
    players = players.assign(_label=labels)
    src = ("team from the teams stage (tracks.team, else players.team)" if how == "team"
           else "group: the kit-colour group most of its detections are in (no teams stage)" if how
           else "no team known")
    when = (f"minute {minute} of each half" if minute is not None
            else "the minute of each half with the most tracked people")
    parts.append(f'<p class="small">Trajectories of {_e(when)}: each line is one track (one person) over the '
                 f"minute's sampled frames, coloured by its {_e(src)}; its mark is where it ends: "
                 f"&#9679; player, &#9632; goalkeeper (thicker line), {_swatch(CLASS_COLOURS['referee'])}&#9670; "
                 f"referee, {_swatch(CLASS_COLOURS['other'])} no team.</p>")
    frame_info = {(int(r.half), int(r.frame)): r for r in frames.itertuples(index=False)} if len(frames) else {}
    figs, strips = [], []
    for half, rows in players[players["track"].notna()].groupby("half", sort=True):
        half = int(half)
        th = tracks[tracks["half"] == half] if len(tracks) else tracks
        facts = _track_facts(rows, th, how)
        chosen, counts = pick_minute(rows, minute)
        if chosen is None or not counts.get(chosen):
            parts.append(_note(f"half {half}: no tracked person with a pitch position"
                               + (f" in minute {chosen}" if chosen is not None else "")))
        else:
            t = pd.to_numeric(rows["t"], errors="coerce")
            paths = track_paths(rows[(t // 60) == chosen])
            keys = sorted(paths)
            teams = [facts.get(k, (-1, "other"))[0] for k in keys]
            roles = [facts.get(k, (-1, "other"))[1] for k in keys]
            img = draw_trajectories([paths[k] for k in keys], [_track_colour(tm, r) for tm, r in zip(teams, roles)],
                                    roles)
            tally = [f"{sum(1 for tm in teams if tm == j)} of {_e(_group_name(j, how))} {_swatch(GROUP_COLOURS[j])}"
                     for j in (0, 1)] if how else []
            tally += [f"{role}s: {sum(1 for r in roles if r == role)}" for role in ("goalkeeper", "referee")]
            cap = (f"half {half}, minute {chosen} ({chosen}:00&ndash;{chosen + 1}:00 of the half): {len(keys)} tracks "
                   f"({', '.join(tally)})")
            figs.append(_figure(encode_image(img, img.shape[1], quality), cap, f"tracks of half {half}"))
        strips += _crop_strips(data, half, rows, th, facts, how, frame_info, corpus_games, storage_options,
                               quality, per_half, crops)
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    if per_half > 0 and crops > 0:
        parts.append(f'<h3>Crops of the longest tracks</h3><p class="small">The {per_half} tracks of each half with '
                     f"the most detections: {crops} crops of the person's box per track, from sampled frames spread "
                     "over the track.</p>")
        parts += strips
    return "".join(parts)


def _track_facts(rows: pd.DataFrame, tracks: pd.DataFrame, how: str) -> dict[int, tuple[int, str]]:
    """Per track of a half: its team / group label (-1: none) and role, from ``tracks`` when it has them, else
    from the most frequent label (``rows._label``) and class of its detections."""
    out: dict[int, tuple[int, str]] = {}
    for k, g in rows.groupby(pd.to_numeric(rows["track"]).astype(int), sort=True):
        lab = g["_label"][g["_label"] >= 0]
        cls = g["cls"].dropna().astype(str)
        out[int(k)] = (int(lab.mode().iloc[0]) if len(lab) and how else -1,
                       str(cls.mode().iloc[0]) if len(cls) else "other")
    if len(tracks):
        for r in tracks.itertuples(index=False):
            if pd.isna(r.track) or int(r.track) not in out:
                continue
            team, role = out[int(r.track)]
            if how == "team" and pd.notna(r.team):
                team = int(r.team)
            if r.cls is not None and pd.notna(r.cls):
                role = str(r.cls)
            out[int(r.track)] = (team, role)
    return out


def _track_colour(team: int, role: str) -> tuple[int, int, int]:
    if role == "referee":
        return CLASS_COLOURS["referee"]
    return GROUP_COLOURS[team] if team in (0, 1) else CLASS_COLOURS["other"]


def _crop_strips(data: GameData, half: int, rows: pd.DataFrame, tracks: pd.DataFrame,
                 facts: dict[int, tuple[int, str]], how: str, frame_info: dict[tuple[int, int], Any],
                 corpus_games: dict[str, Any] | None, storage_options: dict[str, Any] | None, quality: int,
                 per_half: int, crops: int) -> list[str]:
    """The crop strips of the longest tracks of one half (figures, or notes)."""
    if per_half <= 0 or crops <= 0:
        return []
    chosen: list[tuple[int, pd.DataFrame]] = []
    trk = pd.to_numeric(rows["track"], errors="coerce")
    for k in longest_tracks(rows, tracks, per_half):
        g = rows[trk == k].sort_values("frame", kind="stable")
        g = g[g[["x1", "y1", "x2", "y2"]].apply(pd.to_numeric, errors="coerce").notna().all(axis=1)]
        g = g[[(half, int(f)) in frame_info for f in g["frame"]]]
        if len(g):
            chosen.append((k, g.iloc[spread(len(g), crops)]))
    if not chosen:
        return [_note(f"half {half}: no track with boxes in sampled frames: no crops")]
    path, why = _video_for(data, half, corpus_games, storage_options)
    decoded: dict[int, np.ndarray] = {}
    if path is not None:
        wanted = [int(frame_info[(half, int(f))].video_frame) for _, g in chosen for f in g["frame"]]
        try:
            decoded = _decode(path, wanted, storage_options)
        except Exception as exc:  # a broken video gives a note, not a crash
            why = f"video of half {half} could not be decoded: {type(exc).__name__}: {exc}"
    if why:
        return [_note(f"no crops of half {half}: {why}")]
    figs = []
    for k, g in chosen:
        info = [frame_info[(half, int(f))] for f in g["frame"]]
        images = [decoded.get(int(r.video_frame)) for r in info]
        sizes = [(int(r.width), int(r.height)) if pd.notna(r.width) and pd.notna(r.height) else None for r in info]
        strip = crop_strip(images, g[["x1", "y1", "x2", "y2"]].to_numpy(dtype=float), native_sizes=sizes)
        team, role = facts.get(k, (-1, "other"))
        tr = tracks[tracks["track"] == k] if len(tracks) else tracks
        span = (f"sampled frames {int(tr.first_frame.iloc[0])}&ndash;{int(tr.last_frame.iloc[0])}, "
                f"{int(tr.frames.iloc[0])} detections" if len(tr) and pd.notna(tr.frames.iloc[0])
                and pd.notna(tr.first_frame.iloc[0]) and pd.notna(tr.last_frame.iloc[0])
                else f"{int((pd.to_numeric(rows['track'], errors='coerce') == k).sum())} detections")
        cap = (f"half {half} &middot; track {k} &middot; {_swatch(_track_colour(team, role))} "
               f"{_e(_group_name(team, how))} &middot; {_e(role)} &middot; {span} &middot; crops of frames "
               + ", ".join(str(int(f)) for f in g["frame"]))
        figs.append(_figure(encode_image(strip, strip.shape[1], quality), cap, f"crops of track {k} half {half}"))
    return ['<div class="crops">' + "".join(figs) + "</div>"]


def _counts_table(counts: dict[str, Any]) -> str:
    rows = [
        ("sampled frames", _fmt(counts["frames"])),
        ("halves", _e(", ".join(str(h) for h in counts["halves"]) or "none")),
        ("people detected (player rows)", _fmt(counts["players"])),
        ("people per frame", _fmt(counts["players_per_frame"])),
        ("frames with a ball", f"{_fmt(counts['ball_frames'])} ({_fmt(counts['ball_share'], pct=True)})"
         if counts["ball_frames"] is not None else "&ndash;"),
        ("calibration valid", f"{_fmt(counts['calibration_valid'])} of {_fmt(counts['calibration_frames'])} "
         f"({_fmt(counts['calibration_valid_share'], pct=True)})" if counts["calibration_frames"] else "&ndash;"),
        ("on-field players", _fmt(counts["on_field"])),
        ("players with a pitch position", _fmt(counts["positions"])),
        ("graph edges", _fmt(counts["graph_edges"])),
        ("tracks (people followed in a half)", _fmt(counts["tracks"])),
    ]
    return "<table>" + "".join(f'<tr><th>{k}</th><td class="num">{v}</td></tr>' for k, v in rows) + "</table>"


def _timings_table(manifest: dict[str, Any]) -> str:
    seconds = manifest.get("seconds") or {}
    if not seconds:
        return _note("the manifest records no stage timings")
    frames = manifest.get("sampled_frames") or 0
    total = sum(float(v) for v in seconds.values())
    rows = "".join(
        f'<tr><td>{_e(k)}</td><td class="num">{float(v):.2f}</td><td class="num">'
        f'{(frames / float(v)) if float(v) > 0 else 0:.2f}</td><td class="num">{100 * float(v) / total if total else 0:.0f}%</td></tr>'
        for k, v in sorted(seconds.items(), key=lambda kv: -float(kv[1])))
    walls = [float(c.get("wall_s", 0)) for c in manifest.get("chunk_runs") or []]
    extra = (f'<p class="small">{len(walls)} chunk task(s), {sum(walls):.1f} s of worker wall time; '
             f"started {_e(manifest.get('started_at'))}, committed {_e(manifest.get('finished_at'))}.</p>") if walls else ""
    return ("<table><tr><th>stage</th><th>worker s</th><th>frames/s</th><th>share</th></tr>" + rows + "</table>"
            + extra)


def render_report(
    out: str,
    *,
    corpus: str | None = None,
    storage_options: dict[str, Any] | None = None,
    frames_per_half: int = 4,
    width: int = 640,
    quality: int = 70,
    title: str | None = None,
    credits: str | None = None,
    minute: int | None = None,
    tracks_per_half: int = 6,
    crops_per_track: int = 8,
) -> str:
    """The HTML page (a string) of the output root ``out``; see the module docstring. ``minute``: the minute
    of each half whose tracks are drawn (default: the one with the most tracked people); ``tracks_per_half``
    longest tracks of each half get a strip of ``crops_per_track`` crops."""
    layout = OutputLayout.at(out)
    manifests = read_all_manifests(layout, storage_options)
    corpus_games: dict[str, Any] | None = None
    corpus_note = ""
    if corpus:
        from matchflow.storage.corpus import list_games

        try:
            corpus_games = {g.key: g for g in list_games(corpus, storage_options)}
        except Exception as exc:  # a wrong --corpus: note, videos from the manifests
            corpus_note = f"corpus {corpus} could not be listed: {type(exc).__name__}: {exc}"
            corpus_games = {}
    committed = sorted(((g, m) for g, m in manifests.items() if m.get("status") == COMMITTED),
                       key=lambda kv: str(kv[1].get("game", kv[0])))
    failed = sorted(((g, m) for g, m in manifests.items() if m.get("status") != COMMITTED),
                    key=lambda kv: str(kv[1].get("game", kv[0])))
    title = title or f"Matchflow report: {_display(layout.root)}"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="small">Output root <code>{_e(_display(layout.root))}</code>; generated {now}; '
            f"{len(committed)} committed and {len(failed)} failed game(s).</p>"]
    if credits:
        body.append(f'<p class="small">{_e(credits)}</p>')
    body.append('<p class="small">Legend: projected pitch markings ' + _swatch(LINE_COLOUR)
                + "; boxes by class " + " ".join(f"{_swatch(v)}{_e(k)}" for k, v in CLASS_COLOURS.items())
                + " (or by team / kit group " + "".join(_swatch(c) for c in GROUP_COLOURS)
                + " when known); ball: white ring.</p>")
    if corpus_note:
        body.append(_note(corpus_note))
    if not manifests:
        body.append(_note("no manifests under this output root: no game was committed or failed here yet"))
    sections, summary_rows = [], []
    for gid, manifest in committed:
        data = load_game(layout, gid, manifest, storage_options)
        counts = game_counts(data)
        anchor = f"g-{_e(gid)}"
        summary_rows.append(
            f'<tr><td><a href="#{anchor}">{_e(data.key)}</a></td><td>committed</td><td class="num">{_fmt(counts["frames"])}</td>'
            f'<td class="num">{_fmt(counts["players"])}</td><td class="num">{_fmt(counts["ball_share"], pct=True)}</td>'
            f'<td class="num">{_fmt(counts["calibration_valid_share"], pct=True)}</td>'
            f'<td class="num">{_fmt(counts["positions"])}</td><td></td></tr>')
        stages = ", ".join(f"{k} v{v}" for k, v in (manifest.get("stages") or {}).items()) or "unknown"
        sec = [f'<h2 id="{anchor}">{_e(data.key)}</h2>',
               f'<p class="small">game id <code>{_e(gid)}</code>; stages: {_e(stages)}; run {_e(manifest.get("run_id"))}; '
               f'code {_e(manifest.get("code_version"))}</p>']
        sec += [_note(n) for n in data.notes]
        missing = [name for name in ("calibration", "detection", "localization", "graph", "topview")
                   if name not in (manifest.get("stages") or {})]
        if missing:
            sec.append(_note("stages not in this run: " + ", ".join(missing) + " (their parts of the page are empty)"))
        sec.append('<div class="row"><div><h3>Counts</h3>' + _counts_table(counts)
                   + '</div><div><h3>Stage timings</h3>' + _timings_table(manifest) + "</div></div>")
        try:
            if len(data.tables["players"]):  # teams of tracks the teams stage wrote only in tracks.team
                data.tables["players"] = data.tables["players"].assign(
                    team=team_of_rows(data.tables["players"], data.tables["tracks"]))
            labels, colours, how = kit_groups(data.tables["players"])
        except Exception as exc:
            sec.append(_note(f"team grouping failed: {type(exc).__name__}: {exc}"))
            labels, colours, how = np.full(len(data.tables["players"]), -1), [], ""
        group_box = list(GROUP_COLOURS) if how else []
        sec.append(_teams_note(how))
        for name, fn in (
            ("frames", lambda: _frames_section(data, corpus_games, storage_options, frames_per_half, width, quality,
                                               labels, group_box)),
            ("top views", lambda: _topview_section(layout, data, counts["halves"], storage_options, quality)),
            ("positions", lambda: _positions_section(data, labels, colours, how, quality)),
            ("tracks", lambda: _tracks_section(data, corpus_games, storage_options, quality, labels, how, minute,
                                               tracks_per_half, crops_per_track)),
        ):
            try:
                sec.append(fn())
            except Exception as exc:  # one broken part leaves the rest of the page
                _log.exception("report section %s of %s failed", name, data.key)
                sec.append(_note(f"the {name} section could not be drawn: {type(exc).__name__}: {exc}"))
        sections.append("".join(sec))
    for gid, manifest in failed:
        errors = manifest.get("errors") or ["(no error recorded)"]
        summary_rows.append(
            f'<tr><td>{_e(manifest.get("game", gid))}</td><td>{_e(manifest.get("status"))}</td>'
            + '<td class="num">&ndash;</td>' * 5 + f"<td>{_e(errors[0])[:200]}</td></tr>")
    if summary_rows:
        body.append("<h2>Games</h2><table><tr><th>game</th><th>status</th><th>frames</th><th>people</th>"
                    "<th>ball found</th><th>calibration valid</th><th>positions</th><th>error</th></tr>"
                    + "".join(summary_rows) + "</table>")
    body += sections
    if failed:
        body.append("<h2>Failed games</h2>")
        for gid, manifest in failed:
            body.append(f'<h3>{_e(manifest.get("game", gid))}</h3><p class="small">game id <code>{_e(gid)}</code>; '
                        f'run {_e(manifest.get("run_id"))}; finished {_e(manifest.get("finished_at"))}</p>')
            for err in manifest.get("errors") or ["(no error recorded)"]:
                body.append(f'<div class="err">{_e(err)}</div>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _display(url: str) -> str:
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        proto, rest = url.split("://", 1)
        return f"{proto}://{rest.split('@', 1)[1]}"
    return url


def build_report(out: str, html_path: str | None = None, **kwargs: Any) -> str:
    """Write the report of ``out`` to ``html_path`` (default ``<out>/report.html``; local or s3://) and
    return where it went. ``kwargs`` go to :func:`render_report`."""
    page = render_report(out, **kwargs)
    dest = fs.normalize(html_path) if html_path else fs.join(OutputLayout.at(out).root, "report.html")
    fs.write_bytes_atomic(dest, page.encode("utf-8"), kwargs.get("storage_options"))
    return dest


"""Evaluating a run's output against the ground truth of a synthetic corpus (``matchflow eval``).

Calibration (:func:`evaluate_calibration`): the committed ``calibration`` and ``frames`` tables of an output root
are matched to the ``<half>_gt_frames.parquet`` files that ``matchflow synth`` writes beside each video: games by
game key (the game folder's path relative to the corpus root), halves by number, frames by source video frame
number (``frames.video_frame`` against the ground truth's ``frame``). Scores are the World Cup 2014 IoU part and
IoU entire of :mod:`matchflow.models.calibration.metric`, computed with pitch-to-image homographies in the
frame's native pixels.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from matchflow.models.calibration.metric import CalibrationIoU, calibration_iou, summarize
from matchflow.models.geometry.pitch import PitchModel
from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import committed_versions
from matchflow.storage.tables import committed_dataset

__all__ = [
    "EvaluationError",
    "GT_FRAMES_SUFFIX",
    "NEGATIVE_PITCH_FRACTION",
    "evaluate_calibration",
    "format_calibration_report",
]

GT_FRAMES_SUFFIX = "_gt_frames.parquet"
NEGATIVE_PITCH_FRACTION = 0.05
"""Frames whose ground truth shows less than this share of the pitch (or is not a main-camera shot) should not
get a valid calibration; those that do count in the false valid rate."""

_GT_RE = re.compile(r"^(\d+)" + re.escape(GT_FRAMES_SUFFIX) + r"$")
NOTE = "frames without a valid calibration count as IoU 0"


class EvaluationError(ValueError):
    """An output root or ground-truth folder that cannot be evaluated; the message names the path."""


@dataclass
class _GtGame:
    key: str
    halves: dict[int, str] = field(default_factory=dict)  # half -> gt_frames URL
    pitch: PitchModel = field(default_factory=PitchModel)
    size: tuple[int, int] | None = None  # (width, height) of the ground truth's homographies, when known


# --------------------------------------------------------------------------------------------- ground truth
def _list_ground_truth(ground_truth: str, storage_options: dict[str, Any] | None) -> dict[str, _GtGame]:
    """Ground-truth games by key: every ``<half>_gt_frames.parquet`` under the folder (hidden parts skipped)."""
    root = fs.normalize(ground_truth)
    if not fs.exists(root, storage_options):
        raise EvaluationError(f"ground truth {ground_truth} does not exist")
    root_path = fs.strip_protocol(root).rstrip("/")
    games: dict[str, _GtGame] = {}
    for url in fs.list_files(root, storage_options):
        rel = posixpath.relpath(fs.strip_protocol(url), root_path)
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        m = _GT_RE.match(posixpath.basename(rel))
        if not m:
            continue
        folder = posixpath.dirname(rel) or "."
        key = posixpath.basename(root_path) if folder == "." else folder
        games.setdefault(key, _GtGame(key)).halves[int(m.group(1))] = url
    if not games:
        raise EvaluationError(f"ground truth {ground_truth} holds no *{GT_FRAMES_SUFFIX} file")
    for game in games.values():
        some_half = next(iter(game.halves.values()))
        meta_url = fs.join(posixpath.dirname(some_half), "game.json")
        try:
            meta = json.loads(fs.read_bytes(meta_url, storage_options))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        pitch = meta.get("pitch") if isinstance(meta, dict) else None
        if isinstance(pitch, dict) and "length" in pitch and "width" in pitch:
            game.pitch = PitchModel(float(pitch["length"]), float(pitch["width"]))
        if isinstance(meta, dict) and "width" in meta and "height" in meta:
            game.size = (int(meta["width"]), int(meta["height"]))
    return games


def _as_matrices(values: pd.Series) -> np.ndarray:
    """(N, 3, 3) float from a column of 9-element lists; NaN rows for nulls or wrong lengths."""
    out = np.full((len(values), 3, 3), np.nan)
    for i, v in enumerate(values):
        if v is not None:
            a = np.asarray(v, dtype=float)
            if a.size == 9:
                out[i] = a.reshape(3, 3)
    return out


def _inverses(h: np.ndarray) -> np.ndarray:
    out = np.full(h.shape, np.nan)
    for i, m in enumerate(h):
        if np.all(np.isfinite(m)):
            try:
                out[i] = np.linalg.inv(m)
            except np.linalg.LinAlgError:
                pass
    return out


def _read_gt_half(url: str, storage_options: dict[str, Any] | None) -> pd.DataFrame:
    """Ground truth of one half: ``video_frame``, ``gt_h`` (pitch to image 3x3), ``pitch_fraction``, ``shot``."""
    filesystem = fs.filesystem(url, storage_options)
    try:
        tbl = pq.read_table(fs.strip_protocol(url), filesystem=filesystem)
    except Exception as exc:  # any unreadable file is reported with its name
        raise EvaluationError(f"ground-truth file {url} cannot be read: {exc}") from None
    names = set(tbl.column_names)
    missing = {"frame", "pitch_fraction"} - names
    if missing or not names & {"homography", "homography_inv"}:
        need = sorted(missing) + ([] if names & {"homography", "homography_inv"} else ["homography_inv"])
        raise EvaluationError(f"ground-truth file {url} lacks column(s) {need}")
    df = tbl.to_pandas()
    if "homography_inv" in names:
        gt_h = _as_matrices(df["homography_inv"])
    else:
        gt_h = _inverses(_as_matrices(df["homography"]))
    shot = df["shot"].fillna("main").astype(str) if "shot" in names else pd.Series(["main"] * len(df))
    return pd.DataFrame(
        {
            "video_frame": df["frame"].astype(np.int64).to_numpy(),
            "pitch_fraction": df["pitch_fraction"].astype(float).fillna(0.0).to_numpy(),
            "shot": shot.to_numpy(),
        }
    ).assign(gt_h=list(gt_h))


# --------------------------------------------------------------------------------------------- output
def _read_output(out: str, storage_options: dict[str, Any] | None) -> pd.DataFrame:
    """Every sampled frame of the committed games with its calibration (missing calibration: invalid)."""
    layout = OutputLayout.at(out)
    if not fs.exists(layout.root, storage_options):
        raise EvaluationError(f"output root {out} does not exist")
    games = committed_versions(layout, storage_options)
    if not games:
        raise EvaluationError(f"output root {out} has no committed game")
    cal_ds = committed_dataset(layout, "calibration", games, storage_options)
    if not cal_ds.files:
        raise EvaluationError(f"output root {out} has no calibration table ({layout.table_dir('calibration')})")
    frames_ds = committed_dataset(layout, "frames", games, storage_options)
    if not frames_ds.files:
        raise EvaluationError(f"output root {out} has no frames table ({layout.table_dir('frames')})")
    keys = ["game_id", "half", "frame"]
    frames = frames_ds.to_table(columns=keys + ["game", "video_frame", "width", "height"]).to_pandas()
    cal = cal_ds.to_table(columns=keys + ["homography", "homography_inv", "score", "valid"]).to_pandas()
    for df in (frames, cal):
        df["half"] = df["half"].astype(np.int64)
        df["frame"] = df["frame"].astype(np.int64)
    cal = cal.drop_duplicates(keys, keep="last")
    return frames.merge(cal, on=keys, how="left")


def _estimates(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pitch-to-image homographies (N, 3, 3) (NaN where missing) and the valid flags (N,) of output rows."""
    h_inv = _as_matrices(rows["homography_inv"])
    fallback = ~np.all(np.isfinite(h_inv.reshape(len(rows), 9)), axis=1)
    if fallback.any():
        h_inv[fallback] = _inverses(_as_matrices(rows["homography"][fallback]))
    valid = rows["valid"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    return h_inv, valid


# --------------------------------------------------------------------------------------------- evaluation
def _stats(ious: list[CalibrationIoU], valid_eval: list[bool], neg_valid: list[bool]) -> dict[str, Any]:
    s = summarize(ious)
    frames = s.pop("count")
    return {
        "frames": frames,
        **s,
        "valid_rate": float(np.mean(valid_eval)) if valid_eval else None,
        "negative_frames": len(neg_valid),
        "false_valid_rate": float(np.mean(neg_valid)) if neg_valid else None,
    }


def evaluate_calibration(
    out: str,
    ground_truth: str,
    min_pitch_fraction: float = 0.2,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the committed calibrations of output root ``out`` against the synthetic corpus ``ground_truth``.

    Evaluated frames: sampled frames whose ground truth is a main-camera shot (``shot`` column, missing = main)
    showing at least ``min_pitch_fraction`` of the pitch area. Over them: IoU part and IoU entire (mean and
    median; frames without a valid calibration count as IoU 0) and ``valid_rate``, the share with a valid
    calibration. ``false_valid_rate``: over the *negative* frames (not a main shot, or less than
    :data:`NEGATIVE_PITCH_FRACTION` of the pitch seen), the share marked valid. The same figures per game under
    ``games`` (by game key). ``matched_frames`` / ``unmatched_frames`` count output frames with and without a
    ground-truth row; ``games_without_output`` lists ground-truth games the output does not hold.

    Raises :class:`EvaluationError` naming the path when ``out`` has no committed calibration table or
    ``ground_truth`` no ground-truth file.
    """
    if not 0.0 <= min_pitch_fraction <= 1.0:
        raise EvaluationError(f"min_pitch_fraction must be within 0..1, got {min_pitch_fraction}")
    gt_games = _list_ground_truth(ground_truth, storage_options)
    rows = _read_output(out, storage_options)

    all_ious: list[CalibrationIoU] = []
    all_valid: list[bool] = []
    all_neg: list[bool] = []
    per_game: dict[str, dict[str, Any]] = {}
    matched = unmatched = 0
    for key, game_rows in rows.groupby("game", sort=True):
        gt = gt_games.get(str(key))
        if gt is None:
            unmatched += len(game_rows)
            continue
        ious: list[CalibrationIoU] = []
        valid_eval: list[bool] = []
        neg_valid: list[bool] = []
        for half, half_rows in game_rows.groupby("half", sort=True):
            url = gt.halves.get(int(half))
            if url is None:
                unmatched += len(half_rows)
                continue
            gt_half = _read_gt_half(url, storage_options).drop_duplicates("video_frame", keep="last")
            joined = half_rows.assign(video_frame=half_rows["video_frame"].astype(np.int64)).merge(
                gt_half, on="video_frame", how="inner"
            )
            matched += len(joined)
            unmatched += len(half_rows) - len(joined)
            if joined.empty:
                continue
            h_est, valid = _estimates(joined)
            for i, r in enumerate(joined.itertuples(index=False)):
                size = (int(r.width), int(r.height))
                main = r.shot == "main"
                if not main or r.pitch_fraction < NEGATIVE_PITCH_FRACTION:
                    neg_valid.append(bool(valid[i]))
                if not (main and r.pitch_fraction >= min_pitch_fraction):
                    continue
                h_gt = np.asarray(r.gt_h, dtype=float)
                if gt.size is not None and gt.size != size:
                    h_gt = np.diag([size[0] / gt.size[0], size[1] / gt.size[1], 1.0]) @ h_gt
                if not np.all(np.isfinite(h_gt)):
                    continue
                ok = bool(valid[i]) and bool(np.all(np.isfinite(h_est[i])))
                ious.append(calibration_iou(h_est[i] if ok else None, h_gt, size, gt.pitch))
                valid_eval.append(ok)
        per_game[str(key)] = _stats(ious, valid_eval, neg_valid)
        all_ious += ious
        all_valid += valid_eval
        all_neg += neg_valid
    output_games = set(rows["game"].astype(str))
    return {
        "out": out,
        "ground_truth": ground_truth,
        "min_pitch_fraction": float(min_pitch_fraction),
        "negative_pitch_fraction": NEGATIVE_PITCH_FRACTION,
        **_stats(all_ious, all_valid, all_neg),
        "matched_frames": int(matched),
        "unmatched_frames": int(unmatched),
        "games": per_game,
        "games_without_output": sorted(set(gt_games) - output_games),
        "note": NOTE,
    }


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def format_calibration_report(report: dict[str, Any]) -> str:
    """A readable table of an :func:`evaluate_calibration` report: one row per game and one for all of them."""
    head = ("game", "frames", "valid", "part mean", "part med", "entire mean", "entire med", "neg", "false valid")
    lines = []
    rows = [(k, v) for k, v in report["games"].items()] + [("all", report)]
    table = [
        (
            name,
            str(s["frames"]),
            _fmt(s["valid_rate"], True),
            _fmt(s["iou_part_mean"]),
            _fmt(s["iou_part_median"]),
            _fmt(s["iou_entire_mean"]),
            _fmt(s["iou_entire_median"]),
            str(s["negative_frames"]),
            _fmt(s["false_valid_rate"], True),
        )
        for name, s in rows
    ]
    widths = [max(len(r[c]) for r in [head, *table]) for c in range(len(head))]
    fmt_row = lambda r: "  ".join(  # noqa: E731
        (r[c].ljust(widths[c]) if c == 0 else r[c].rjust(widths[c])) for c in range(len(r))
    )
    lines.append(fmt_row(head))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt_row(r) for r in table[:-1]]
    if len(table) > 1:
        lines.append("  ".join("-" * w for w in widths))
    lines.append(fmt_row(table[-1]))
    lines.append(
        f"evaluated: main-camera frames showing >= {report['min_pitch_fraction']:g} of the pitch; {NOTE}. "
        f"neg: frames not from the main camera or showing < {report['negative_pitch_fraction']:g} of the pitch; "
        f"false valid: share of them marked valid."
    )
    lines.append(f"output frames matched to ground truth: {report['matched_frames']}, "
                 f"unmatched: {report['unmatched_frames']}")
    if report["games_without_output"]:
        lines.append(f"ground-truth games missing from the output: {', '.join(report['games_without_output'])}")
    return "\n".join(lines)

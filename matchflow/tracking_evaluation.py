"""Scoring tracks and teams of an output root against a synthetic corpus's ground truth (``matchflow eval tracking``).

Each half of each game is one sequence: its sampled frames (``frames.video_frame``) against the renderer's
people of the same video frames (``<half>_gt_players.parquet``: persistent ``person`` ids, ``team``, ``role``,
boxes), those seen at least ``min_visible`` of their body. Boxes are compared by IoU. The MOT metrics come from
TrackEval (HOTA, DetA, AssA; CLEAR: MOTA and ID switches; Identity: IDF1), summed over sequences as TrackEval
combines them. ID switches are also given per player-minute (a minute of one person seen, at the sampling rate).

Teams: detections matched to a true player (IoU >= 0.5, Hungarian per frame) whose team is set; accuracy as
written (team 0 attacks +x in half 1, the renderer's convention too) and with the better of the two label
permutations per game. Roles: the share of true goalkeepers' and referees' matched detections whose track has that
role (``tracks.cls``).
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from matchflow.evaluation import EvaluationError
from matchflow.models.tracking.tracker import box_iou
from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import committed_versions
from matchflow.storage.tables import committed_dataset

__all__ = ["evaluate_tracking", "format_tracking_report"]

_PLAYER_COLS = ["game_id", "game", "half", "frame", "x1", "y1", "x2", "y2", "track", "team"]


def _table(layout: OutputLayout, name: str, columns: list[str], games: dict[str, int],
           storage_options: dict[str, Any] | None) -> pd.DataFrame:
    ds = committed_dataset(layout, name, games, storage_options)
    return ds.to_table(columns=columns).to_pandas() if ds.files else pd.DataFrame(columns=columns)


def _sequence(ours: pd.DataFrame, gt: pd.DataFrame, frames: list[int]) -> tuple[dict[str, Any], pd.DataFrame]:
    """TrackEval's data of one sequence, and the matched (IoU >= 0.5) pairs: our row index, true person, team,
    role."""
    from scipy.optimize import linear_sum_assignment

    gt_ids = {p: i for i, p in enumerate(sorted(gt.person.unique()))}
    tr_ids = {t: i for i, t in enumerate(sorted(ours.track.unique()))}
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_timesteps": len(frames),
                            "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids), "num_gt_dets": len(gt),
                            "num_tracker_dets": len(ours), "seq": "half"}
    by_frame_gt = dict(tuple(gt.groupby("video_frame")))
    by_frame_ours = dict(tuple(ours.groupby("video_frame")))
    pairs = []
    for vf in frames:
        g = by_frame_gt.get(vf, gt.iloc[:0])
        o = by_frame_ours.get(vf, ours.iloc[:0])
        iou = box_iou(g[["x1", "y1", "x2", "y2"]].to_numpy(float), o[["x1", "y1", "x2", "y2"]].to_numpy(float))
        data["gt_ids"].append(np.array([gt_ids[p] for p in g.person], int))
        data["tracker_ids"].append(np.array([tr_ids[t] for t in o.track], int))
        data["similarity_scores"].append(iou)
        if iou.size:
            r, c = linear_sum_assignment(-iou)
            for a, b in zip(r, c):
                if iou[a, b] >= 0.5:
                    pairs.append((o.index[b], g.person.iloc[a], g.team.iloc[a], g.role.iloc[a]))
    return data, pd.DataFrame(pairs, columns=["row", "person", "true_team", "role"])


def evaluate_tracking(out: str, ground_truth: str, min_visible: float = 0.3,
                      storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report (see the module docstring) of the committed games of ``out`` that ``ground_truth`` (a
    ``matchflow synth`` corpus folder) holds."""
    from trackeval.metrics import CLEAR, HOTA, Identity

    layout = OutputLayout.at(out)
    games = committed_versions(layout, storage_options) if fs.exists(layout.root, storage_options) else {}
    if not games:
        raise EvaluationError(f"output root {out} has no committed game")
    players = _table(layout, "players", _PLAYER_COLS, games, storage_options)
    if players.empty or players.track.isna().all():
        raise EvaluationError(f"output root {out} has no tracked players (run the tracking stage)")
    frames = _table(layout, "frames", ["game_id", "half", "frame", "video_frame"], games, storage_options)
    tracks = _table(layout, "tracks", ["game_id", "half", "track", "cls"], games, storage_options)
    players = players.merge(frames, on=["game_id", "half", "frame"])
    root = fs.strip_protocol(fs.normalize(ground_truth)).rstrip("/")
    metrics = {"HOTA": HOTA(), "CLEAR": CLEAR({"PRINT_CONFIG": False}), "Identity": Identity({"PRINT_CONFIG": False})}
    per_seq: dict[str, dict[str, dict]] = {k: {} for k in metrics}
    matched: list[pd.DataFrame] = []
    sequences, player_minutes = [], 0.0
    fps = None
    for (gid, game, half), ours in players.groupby(["game_id", "game", "half"]):
        gt_url = posixpath.join(root, game, f"{half}_gt_players.parquet")
        if not fs.exists(gt_url, storage_options):
            gt_url = posixpath.join(root, f"{half}_gt_players.parquet") if posixpath.basename(root) == game else gt_url
        if not fs.exists(gt_url, storage_options):
            continue
        gt = pq.read_table(gt_url, filesystem=fs.filesystem(gt_url, storage_options)).to_pandas()
        gt = gt[gt.visible_fraction >= min_visible].rename(columns={"frame": "video_frame"})
        sampled = sorted(frames[(frames.game_id == gid) & (frames.half == half)].video_frame.astype(int))
        gt = gt[gt.video_frame.isin(sampled)]
        if fps is None:
            meta_url = posixpath.join(posixpath.dirname(gt_url), "game.json")
            meta = json.loads(fs.read_bytes(meta_url, storage_options)) if fs.exists(meta_url, storage_options) else {}
            fps = float(meta.get("fps", 25.0))
        data, pairs = _sequence(ours.assign(track=ours.track.astype(int)), gt, sampled)
        name = f"{game}/{half}"
        for k, m in metrics.items():
            per_seq[k][name] = m.eval_sequence(data)
        step = (sampled[1] - sampled[0]) / (fps or 25.0) if len(sampled) > 1 else 0.5
        player_minutes += len(gt) * step / 60.0
        roles = tracks[(tracks.game_id == gid) & (tracks.half == half)].set_index("track").cls.astype(str)
        p = pairs.assign(game_id=gid, team=ours.loc[pairs.row, "team"].to_numpy(),
                         track_role=[roles.get(int(t), "") for t in ours.loc[pairs.row, "track"]])
        matched.append(p)
        sequences.append(name)
    if not sequences:
        raise EvaluationError(f"ground truth {ground_truth} holds none of the games of {out}")
    combined = {k: metrics[k].combine_sequences(per_seq[k]) for k in metrics}
    hota = combined["HOTA"]
    report: dict[str, Any] = {
        "sequences": sequences,
        "HOTA": float(np.mean(hota["HOTA"])), "DetA": float(np.mean(hota["DetA"])), "AssA": float(np.mean(hota["AssA"])),
        "IDF1": float(combined["Identity"]["IDF1"]), "MOTA": float(combined["CLEAR"]["MOTA"]),
        "IDSW": int(combined["CLEAR"]["IDSW"]), "player_minutes": round(player_minutes, 2),
        "IDSW_per_player_minute": float(combined["CLEAR"]["IDSW"]) / max(player_minutes, 1e-9),
        "min_visible": min_visible,
    }
    m = pd.concat(matched, ignore_index=True)
    players_m = m[(m.role == "player") & m.team.notna()]
    outfield = m[m.role == "player"]
    report["team_coverage"] = float(len(players_m) / max(len(outfield), 1))
    if len(players_m):
        report["team_accuracy"] = float(np.mean(players_m.team.to_numpy() == players_m.true_team.to_numpy()))
        best = 0
        for _, g in players_m.groupby("game_id"):
            same = int(np.sum(g.team.to_numpy() == g.true_team.to_numpy()))
            best += max(same, len(g) - same)
        report["team_accuracy_best_permutation"] = best / len(players_m)
    for role in ("goalkeeper", "referee"):
        r = m[m.role == role]
        report[f"{role}_recall"] = float(np.mean(r.track_role == role)) if len(r) else None
    return report


def format_tracking_report(report: dict[str, Any]) -> str:
    """The report as a few lines of text."""
    def f(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    return "\n".join([
        f"sequences: {len(report['sequences'])} halves, {report['player_minutes']} player-minutes "
        f"(people at least {report['min_visible']:.0%} visible)",
        f"HOTA {f(report['HOTA'])}  DetA {f(report['DetA'])}  AssA {f(report['AssA'])}  IDF1 {f(report['IDF1'])}  "
        f"MOTA {f(report['MOTA'])}",
        f"ID switches {report['IDSW']} ({f(report['IDSW_per_player_minute'])} per player-minute)",
        f"teams: accuracy {f(report.get('team_accuracy'))} (best permutation "
        f"{f(report.get('team_accuracy_best_permutation'))}), on {f(report['team_coverage'])} of matched players",
        f"roles: goalkeeper recall {f(report['goalkeeper_recall'])}, referee recall {f(report['referee_recall'])}",
    ])

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

GS-HOTA, SoccerNet's game-state reconstruction metric: TrackEval's HOTA on another similarity, that of SoccerNet's
``SoccerNetGS`` data set class (sn-trackeval): between the bottom-middle pitch points of a detection P and a true
person G, LocSim = exp(ln(0.05) |P - G|^2 / tau^2) with tau = 5 m (0.05 at 5 m, HOTA's lowest threshold, so
people further apart never match), times 1 when the attributes agree, else 0: the role, and for players and
goalkeepers the team side (left/right). Jerseys are not compared: the output predicts none (SoccerNet's
``USE_JERSEY_NUMBERS`` off). Our side is the ``gsr`` export's (:func:`matchflow.exports.gsr_labels`, built in
memory, so frames without a valid calibration hold no detection); the truth's comes from the renderer's teams and
the direction team 0 attacks in the half (``game.json``). GS-HOTA is None when a game lacks a table the ``gsr``
export needs (the ``tracks`` table of the teams stage).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from matchflow.evaluation import EvaluationError
from matchflow.exports import ExportError, committed_games, gsr_game_labels, gsr_image_id, gsr_side
from matchflow.models.tracking.tracker import box_iou
from matchflow.storage import fs
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import committed_versions
from matchflow.storage.tables import committed_dataset

__all__ = ["GS_TOLERANCE_M", "evaluate_tracking", "format_tracking_report", "gs_similarity"]

_PLAYER_COLS = ["game_id", "game", "half", "frame", "x1", "y1", "x2", "y2", "track", "team"]


def _table(layout: OutputLayout, name: str, columns: list[str], games: dict[str, int],
           storage_options: dict[str, Any] | None) -> pd.DataFrame:
    ds = committed_dataset(layout, name, games, storage_options)
    return ds.to_table(columns=columns).to_pandas() if ds.files else pd.DataFrame(columns=columns)


#: GS-HOTA's distance tolerance (metres): the localization similarity is 0.05 at this distance.
GS_TOLERANCE_M = 5.0


def _trackeval_data(
    gt: pd.DataFrame, ours: pd.DataFrame, steps: list[Any],
    similarity: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray],
) -> tuple[dict[str, Any], list[tuple[pd.DataFrame, pd.DataFrame, np.ndarray]]]:
    """TrackEval's data of one sequence: per step (a value of both frames' ``step`` column, in ``steps`` order)
    the true people (``person``), our tracks (``track``) and ``similarity(true rows, our rows)``; also each
    step's (true rows, our rows, similarity)."""
    gt_ids = {p: i for i, p in enumerate(sorted(gt.person.unique()))}
    tr_ids = {t: i for i, t in enumerate(sorted(ours.track.unique()))}
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [], "num_timesteps": len(steps),
                            "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids), "num_gt_dets": len(gt),
                            "num_tracker_dets": len(ours), "seq": "half"}
    by_step_gt = dict(tuple(gt.groupby("step")))
    by_step_ours = dict(tuple(ours.groupby("step")))
    per_step = []
    for s in steps:
        g = by_step_gt.get(s, gt.iloc[:0])
        o = by_step_ours.get(s, ours.iloc[:0])
        sim = similarity(g, o)
        data["gt_ids"].append(np.array([gt_ids[p] for p in g.person], int))
        data["tracker_ids"].append(np.array([tr_ids[t] for t in o.track], int))
        data["similarity_scores"].append(sim)
        per_step.append((g, o, sim))
    return data, per_step


def _box_similarity(g: pd.DataFrame, o: pd.DataFrame) -> np.ndarray:
    return box_iou(g[["x1", "y1", "x2", "y2"]].to_numpy(float), o[["x1", "y1", "x2", "y2"]].to_numpy(float))


def _sequence(ours: pd.DataFrame, gt: pd.DataFrame, frames: list[int]) -> tuple[dict[str, Any], pd.DataFrame]:
    """TrackEval's data of one sequence (boxes by IoU), and the matched (IoU >= 0.5) pairs: our row index, true
    person, team, role."""
    from scipy.optimize import linear_sum_assignment

    data, per_step = _trackeval_data(gt.assign(step=gt.video_frame), ours.assign(step=ours.video_frame), frames,
                                     _box_similarity)
    pairs = []
    for g, o, iou in per_step:
        if iou.size:
            r, c = linear_sum_assignment(-iou)
            for a, b in zip(r, c):
                if iou[a, b] >= 0.5:
                    pairs.append((o.index[b], g.person.iloc[a], g.team.iloc[a], g.role.iloc[a]))
    return data, pd.DataFrame(pairs, columns=["row", "person", "true_team", "role"])


def _true_identities(ours: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``ours`` with the tracks a perfect tracker would give these detections: the true person's id where a
    detection matches one at IoU >= 0.5 (``pairs`` of :func:`_sequence`), a track of its own otherwise. Its HOTA
    is the most any association of these detections scores (up to the matching at stricter thresholds)."""
    track = -1 - np.arange(len(ours), dtype=np.int64)  # negative: never a person's id
    pos = ours.index.get_indexer(pairs.row)
    track[pos] = pairs.person.to_numpy(np.int64)
    return ours.assign(track=track)


def gs_similarity(g: pd.DataFrame, o: pd.DataFrame) -> np.ndarray:
    """GS-HOTA's similarity of true people ``g`` and detections ``o`` (columns ``x``, ``y``: bottom-middle pitch
    point in metres; ``role``; ``side``: left, right or "" for none): exp(ln(0.05) d^2 / tau^2), tau =
    :data:`GS_TOLERANCE_M`, where role and side agree, else 0."""
    d = g[["x", "y"]].to_numpy(float)[:, None, :] - o[["x", "y"]].to_numpy(float)[None, :, :]
    loc = np.exp(np.log(0.05) * np.sum(d**2, axis=-1) / GS_TOLERANCE_M**2)
    same = (g.role.to_numpy(object)[:, None] == o.role.to_numpy(object)[None, :]) & (
        g.side.to_numpy(object)[:, None] == o.side.to_numpy(object)[None, :])
    return np.where(same, loc, 0.0)


def _gs_ours(labels: dict[str, Any]) -> pd.DataFrame:
    """The detections of a half's GSR labels: step (image id), track, bottom-middle pitch point, role, side."""
    ann = labels["annotations"]
    return pd.DataFrame({
        "step": [a["image_id"] for a in ann], "track": [a["track_id"] for a in ann],
        "x": [a["bbox_pitch"]["x_bottom_middle"] for a in ann], "y": [a["bbox_pitch"]["y_bottom_middle"] for a in ann],
        "role": [a["attributes"]["role"] for a in ann], "side": [a["attributes"]["team"] or "" for a in ann],
    })


def _gs_truth(gt: pd.DataFrame, half: int, meta: dict[str, Any]) -> pd.DataFrame:
    """The true people of a half for GS-HOTA: step (image id), person, pitch point, role and side, team 0 being
    left when it attacks toward +x in the half (``game.json``; without it, the output's convention)."""
    attacks = next((h.get("home_attacks_toward_x") for h in meta.get("halves", []) if h.get("half") == half), None)

    def side(team: int, role: str) -> str:
        if role not in ("player", "goalkeeper") or team not in (0, 1):
            return ""
        if attacks is None:
            return gsr_side(team, half) or ""
        return "left" if (team == 0) == (float(attacks) > 0) else "right"

    return pd.DataFrame({
        "step": [gsr_image_id(half, int(v)) for v in gt.video_frame], "person": gt.person.to_numpy(),
        "x": gt.pitch_x.to_numpy(float), "y": gt.pitch_y.to_numpy(float), "role": gt.role.astype(str).to_numpy(),
        "side": [side(int(t), str(r)) for t, r in zip(gt.team, gt.role)],
    })


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
    # GS-HOTA: the gsr export's labels of each game (None once a game cannot be exported: GS-HOTA is then None)
    exported = {g.game_id: g for g in committed_games(out, storage_options=storage_options)}
    labels: dict[str, dict[int, dict[str, Any]]] | None = {}
    gs_per_seq: dict[str, dict] = {}
    gs_missing = None
    matched: list[pd.DataFrame] = []
    sequences, player_minutes = [], 0.0
    ceiling: dict[str, dict] = {}  # HOTA of the same detections with their true identities
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
        meta_url = posixpath.join(posixpath.dirname(gt_url), "game.json")
        meta = json.loads(fs.read_bytes(meta_url, storage_options)) if fs.exists(meta_url, storage_options) else {}
        if fps is None:
            fps = float(meta.get("fps", 25.0))
        data, pairs = _sequence(ours.assign(track=ours.track.astype(int)), gt, sampled)
        name = f"{game}/{half}"
        for k, m in metrics.items():
            per_seq[k][name] = m.eval_sequence(data)
        ceiling[name] = metrics["HOTA"].eval_sequence(_sequence(_true_identities(ours, pairs), gt, sampled)[0])
        if labels is not None and gid not in labels:
            try:
                labels[gid] = gsr_game_labels(layout, exported[gid], storage_options)
            except ExportError as exc:
                labels, gs_missing = None, str(exc)
        if labels is not None:
            gs_data, _ = _trackeval_data(_gs_truth(gt, int(half), meta), _gs_ours(labels[gid][int(half)]),
                                         [gsr_image_id(int(half), v) for v in sampled], gs_similarity)
            gs_per_seq[name] = metrics["HOTA"].eval_sequence(gs_data)
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
    half_iou = int(np.argmin(np.abs(metrics["HOTA"].array_labels - 0.5)))  # HOTA's thresholds 0.05 ... 0.95
    report: dict[str, Any] = {
        "sequences": sequences,
        "HOTA": float(np.mean(hota["HOTA"])), "DetA": float(np.mean(hota["DetA"])), "AssA": float(np.mean(hota["AssA"])),
        # at box overlap 0.5 alone (the usual MOT threshold), and the mean IoU of matched boxes (LocA): with boxes
        # a few tens of pixels tall, HOTA's strict thresholds (IoU up to 0.95) weigh the box fit as much as identity
        "HOTA_at_iou_0.5": float(hota["HOTA"][half_iou]), "AssA_at_iou_0.5": float(hota["AssA"][half_iou]),
        "LocA": float(np.mean(hota["LocA"])),
        "HOTA_true_identities": float(np.mean(metrics["HOTA"].combine_sequences(ceiling)["HOTA"])),
        "IDF1": float(combined["Identity"]["IDF1"]), "MOTA": float(combined["CLEAR"]["MOTA"]),
        "IDSW": int(combined["CLEAR"]["IDSW"]), "player_minutes": round(player_minutes, 2),
        "IDSW_per_player_minute": float(combined["CLEAR"]["IDSW"]) / max(player_minutes, 1e-9),
        "min_visible": min_visible,
        "GS-HOTA": None, "GS-DetA": None, "GS-AssA": None, "GS-HOTA_tolerance_m": GS_TOLERANCE_M,
        "GS-HOTA_missing": gs_missing,
    }
    if labels is not None:
        gs = metrics["HOTA"].combine_sequences(gs_per_seq)
        report.update({f"GS-{k}": float(np.mean(gs[k])) for k in ("HOTA", "DetA", "AssA")})
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
        f"at box overlap 0.5: HOTA {f(report['HOTA_at_iou_0.5'])}  AssA {f(report['AssA_at_iou_0.5'])}; "
        f"LocA {f(report['LocA'])} (mean IoU of matched boxes); HOTA with true identities on these detections "
        f"{f(report['HOTA_true_identities'])}",
        f"GS-HOTA {f(report['GS-HOTA'])}  GS-DetA {f(report['GS-DetA'])}  GS-AssA {f(report['GS-AssA'])} (pitch "
        f"points within {report['GS-HOTA_tolerance_m']:g} m, role and team side; jerseys not predicted, not compared)"
        + (f": n/a, {report['GS-HOTA_missing']}" if report.get("GS-HOTA_missing") else ""),
        f"ID switches {report['IDSW']} ({f(report['IDSW_per_player_minute'])} per player-minute)",
        f"teams: accuracy {f(report.get('team_accuracy'))} (best permutation "
        f"{f(report.get('team_accuracy_best_permutation'))}), on {f(report['team_coverage'])} of matched players",
        f"roles: goalkeeper recall {f(report['goalkeeper_recall'])}, referee recall {f(report['referee_recall'])}",
    ])

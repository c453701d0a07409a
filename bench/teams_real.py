"""Teams and roles on real broadcast frames: the teams stage's rules, one frame at a time.

Real frames: the 38 Bundesliga frames (1920x1080) of the valid split of "football-players-detection"
(roboflow-jvuqo, Roboflow Universe, CC BY 4.0), several matches, one frame each. They become a one-half video as
in ``bench/real_report.py`` (each image held 1 s, sampled at 1 fps) and the chain frames, calibration, detection,
localization, reid runs on it. Each sampled frame is then split into teams and roles by
:func:`matchflow.models.tracking.teams.assign_teams`, every detection its own track (``min_frames`` 1: single
frames have no tracks), with ReID embeddings (two-stream) beside kit colours, as the stage splits them, and with kit colours alone as the appearance; the kit
colours and pitch positions are the localization stage's.

- Teams: against the hand labels of ``bench/data/reid_team_labels.json`` (the team of 152 player boxes of 8
  frames), detections matched to labelled boxes at IoU >= 0.5; accuracy with the better of the two label
  permutations per frame (different matches, and no direction of play in a single frame).
- Roles: against the data set's classes on all 38 frames (goalkeeper, referee, player boxes), recall of each
  role as ours (``role``) and as the detector's class alone; and what becomes of detections that match no
  labelled person (people beside the pitch: staff, substitutes), which should be ``other``, not referees.

    .venv/bin/python bench/teams_real.py [--work DIR] [--skip-run] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from common import header, publish
from real_report import GAME, make_video

from matchflow.models.detection.metric import box_iou
from matchflow.models.tracking.teams import TeamParams, assign_teams, team_appearance
from matchflow.models.tracking.tracker import colour_features

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "soccer-players-detection" / "valid"
CLASSES = {1: "goalkeeper", 2: "player", 3: "referee"}
CHAIN = ["frames", "calibration", "detection", "localization", "reid"]


def _labels(image: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The labelled people of an image: boxes (N, 4) native pixels and class ids (N,), in file order."""
    w, h = size
    rows = np.loadtxt(DATA / "labels" / (Path(image).stem + ".txt"), ndmin=2)
    rows = rows[np.isin(rows[:, 0], list(CLASSES))]
    cx, cy, bw, bh = rows[:, 1] * w, rows[:, 2] * h, rows[:, 3] * w, rows[:, 4] * h
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1), rows[:, 0].astype(int)


def _match(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """For each labelled box, the index of our detection matched to it (IoU >= 0.5, Hungarian), or -1."""
    from scipy.optimize import linear_sum_assignment

    out = np.full(len(theirs), -1)
    if len(ours) and len(theirs):
        iou = box_iou(theirs, ours)
        r, c = linear_sum_assignment(-iou)
        keep = iou[r, c] >= 0.5
        out[r[keep]] = c[keep]
    return out


def _frames(out: Path) -> list[dict]:
    """Per sampled frame of the run: its players' columns and ReID embeddings, read back from the output."""
    from matchflow.config import PipelineConfig
    from matchflow.game_stages import HalfSpec, HalfStore
    from matchflow.stages.tracking import embeddings_of_rows
    from matchflow.storage.layout import OutputLayout, part_version
    from matchflow.video import VideoInfo

    manifest = json.loads(next((out / "manifests").glob("*.json")).read_text())
    v = manifest["halves"]["1"]
    chunks = sorted(int(p.stem.split("-c")[-1]) for p in (out / "tables" / "players").rglob("*h1-c*.parquet")
                    if part_version(p.name) == manifest["version"])  # a forced rerun writes a new version
    spec = HalfSpec(manifest["game"], manifest["game_id"], 1,
                    VideoInfo(v["path"], v["n_frames"], v["fps"], v["width"], v["height"]), tuple(chunks),
                    manifest["version"])
    cols = ("det", "x1", "y1", "x2", "y2", "cls", "pitch_x", "pitch_y", "on_field", "color_r", "color_g", "color_b")
    store = HalfStore(spec, PipelineConfig(), OutputLayout.at(str(out))).for_stage(
        "bench", (*(f"players.{c}" for c in cols), "reid.det", "reid.row", "arrays/reid", "frames.video_frame"), ())
    p = store.table("players")
    frame, det = np.asarray(p["frame"], np.int64), np.asarray(p["det"], np.int64)
    emb = embeddings_of_rows(store, frame, det)
    video_frame = dict(zip(store.table("frames")["frame"], store.table("frames")["video_frame"]))
    result = []
    for f in np.unique(frame):
        rows = np.flatnonzero(frame == f)
        result.append({"image": int(video_frame[int(f)]) // round(v["fps"]), "rows": rows, "emb": emb[rows],
                       **{c: np.asarray(p[c])[rows] for c in cols}})
    return result


def evaluate(out: Path) -> dict:
    images = sorted(p.name for p in (DATA / "images").iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    team_labels = json.loads((HERE / "data" / "reid_team_labels.json").read_text())["frames"]
    tally: dict = {}
    for fr in _frames(out):
        name = images[fr["image"]]
        boxes = np.stack([fr[c].astype(float) for c in ("x1", "y1", "x2", "y2")], axis=1)
        theirs, cls = _labels(name, (1920, 1080))
        matched = _match(boxes, theirs)
        colour = colour_features(np.stack([np.nan_to_num(fr[c].astype(float), nan=128.0)
                                           for c in ("color_r", "color_g", "color_b")], axis=1))
        n = len(boxes)
        for mode, appearance in (("reid", team_appearance(colour, fr["emb"])), ("colour", team_appearance(colour))):
            res = assign_teams(np.arange(n), appearance, fr["pitch_x"].astype(float), fr["on_field"],
                               fr["cls"].astype(object), 1, TeamParams(min_frames=1), colour=colour,
                               pitch_y=fr["pitch_y"].astype(float), frame=np.zeros(n, int))
            t = tally.setdefault(mode, {"team_right": 0, "team_total": 0, "role_hits": {}, "unmatched": {}})
            for k, c in CLASSES.items():
                sel = (cls == k) & (matched >= 0)
                h = t["role_hits"].setdefault(c, [0, 0, 0])  # ours right, detector right, labelled and detected
                h[0] += int(np.sum(res.role[matched[sel]] == c))
                h[1] += int(np.sum(fr["cls"][matched[sel]] == c))
                h[2] += int(sel.sum())
            rest = np.setdiff1d(np.arange(n), matched[matched >= 0])
            for r in rest:
                t["unmatched"][str(res.role[r])] = t["unmatched"].get(str(res.role[r]), 0) + 1
            t["unmatched"]["detector said referee"] = (t["unmatched"].get("detector said referee", 0)
                                                       + int(np.sum(fr["cls"][rest] == "referee")))
            labels = team_labels.get(name)
            if labels:
                player_rows = np.flatnonzero(cls == 2)  # label keys: index among the class-2 rows
                truth, ours = [], []
                for key, kit in labels.items():
                    i = player_rows[int(key)]
                    if matched[i] >= 0 and res.team[matched[i]] >= 0:
                        truth.append(kit)
                        ours.append(int(res.team[matched[i]]))
                kits = sorted(set(truth))
                same = sum(1 for a, b in zip(truth, ours) if kits.index(a) == b)
                t["team_right"] += max(same, len(truth) - same)
                t["team_total"] += len(labels)  # every labelled player counts: unmatched or without a team is wrong
    return {"frames": len(images), "team_labelled_frames": len(team_labels), **tally}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/matchflow-teams-real")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-run", action="store_true", help="evaluate the run already under --work")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    a = ap.parse_args()
    work = Path(a.work)
    corpus, out = work / "corpus", work / "out"
    if not a.skip_run:
        from matchflow.config import PipelineConfig
        from matchflow.flows.corpus import run_corpus
        from matchflow.prefect_env import local_api

        make_video(DATA / "images", corpus / GAME / "1_1080p.mp4")
        cfg = PipelineConfig(fps=1.0, workers=a.workers, chunk_frames=4, batch_frames=2, retries=1, stages=CHAIN)
        with local_api():
            summary = run_corpus(str(corpus), str(out), cfg, force=True)
        if summary.failed:
            sys.exit(f"run failed: {summary.failed}")
    r = evaluate(out)
    (work / "teams_real.json").write_text(json.dumps(r, indent=1))
    print(json.dumps(r, indent=1))
    lines = header(".venv/bin/python bench/teams_real.py")
    lines += ["", f"Real Bundesliga frames ({r['frames']}, several matches, one frame each), chain {', '.join(CHAIN)} at "
              "1 fps; teams and roles per frame by the teams stage's rules (every detection its own track). Teams: "
              f"{r['reid']['team_total']} hand-labelled players of {r['team_labelled_frames']} frames "
              "(bench/data/reid_team_labels.json), best label permutation per frame, an unmatched or team-less "
              "labelled player counts as wrong. Roles: the data set's classes on every frame, detections matched at "
              "IoU >= 0.5.", "",
              "| appearance | team accuracy | goalkeeper recall (detector's class) | referee recall (detector's class) "
              "| player kept as player | unmatched detections: other / referee (detector: referee) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for mode, label in (("reid", "ReID embeddings (two-stream) beside kit colours"), ("colour", "kit colours")):
        t = r[mode]
        h = t["role_hits"]
        u = t["unmatched"]

        def rec(c: str, k: int, h: dict = h) -> str:
            return f"{h[c][k]}/{h[c][2]}"

        lines.append(f"| {label} | {t['team_right'] / max(t['team_total'], 1):.3f} ({t['team_right']}/{t['team_total']}) | "
                     f"{rec('goalkeeper', 0)} ({rec('goalkeeper', 1)}) | {rec('referee', 0)} ({rec('referee', 1)}) | "
                     f"{rec('player', 0)} | {u.get('other', 0)} / {u.get('referee', 0)} ({u.get('detector said referee', 0)}) |")
    publish("Teams and roles on real frames", "\n".join(lines), write=not a.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())

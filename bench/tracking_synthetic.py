"""Tracks and teams on held-out synthetic games, with and without re-identification embeddings.

Synthesizes games with the *held-out* cameras of the camera prior (and stadiums, kits and plays of a seed no
training used), 1280x720, with cut-aways (close-ups and crowd shots) for ``--cutaways`` of each half; runs the
soccer chain at 2 fps twice through ``matchflow run``: with the ``reid`` stage (two-stream, shipped weights) and
``appearance: reid``, and without it (``appearance: colour``); scores both with ``matchflow eval tracking``
(TrackEval HOTA / IDF1 / MOTA, team accuracy, role recall, SoccerNet's GS-HOTA) and times the stages from the manifests (tracking
and teams against the whole chain, per sampled frame). Writes the section "Tracking and teams" of
bench/RESULTS.md.

    .venv/bin/python bench/tracking_synthetic.py [--games 2] [--seconds 60] [--cutaways 0.15] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import header, load_average, publish, work_folder

from matchflow.config import PipelineConfig
from matchflow.flows.corpus import run_corpus
from matchflow.tracking_evaluation import evaluate_tracking

CHAIN = ["frames", "calibration", "detection", "localization", "reid", "tracking", "teams"]


def _run(corpus: Path, out: Path, with_reid: bool, workers: int) -> dict:
    stages = CHAIN if with_reid else [s for s in CHAIN if s != "reid"]
    appearance = "reid" if with_reid else "colour"
    cfg = PipelineConfig(workers=workers, stages=stages, retries=0,
                         stage_params={"tracking": {"appearance": appearance}, "teams": {"appearance": appearance}})
    summary = run_corpus(str(corpus), str(out), cfg)
    if summary.failed:
        raise SystemExit(f"run failed: {summary.failed}")
    seconds: dict[str, float] = {}
    frames = 0
    for m in (out / "manifests").glob("*.json"):
        man = json.loads(m.read_text())
        frames += int(man["sampled_frames"])
        for stage, s in man["seconds"].items():
            seconds[stage] = seconds.get(stage, 0.0) + float(s)
    report = evaluate_tracking(str(out), str(corpus))
    report["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    report["frames"] = frames
    return report


def _median_box(corpus: Path) -> tuple[float, float]:
    """Median height and width (pixels) of the true boxes of people at least 30% visible in the corpus."""
    import pandas as pd

    gt = pd.concat([pd.read_parquet(f) for f in sorted(corpus.rglob("*_gt_players.parquet"))], ignore_index=True)
    gt = gt[gt.visible_fraction >= 0.3]
    return float((gt.y2 - gt.y1).median()), float((gt.x2 - gt.x1).median())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cutaways", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=977)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", help="work folder to keep (corpus and outputs; an existing corpus is reused)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    a = ap.parse_args()
    tmp, work = work_folder(a.keep, "mf-tracking-")
    corpus = work / "corpus"
    if not corpus.exists():
        from matchflow.synth import synthesize_corpus

        synthesize_corpus(corpus, games=a.games, halves=2, seconds=a.seconds, seed=a.seed, cameras="heldout",
                          cutaways=a.cutaways, workers=a.workers, progress=print)
    load0 = load_average()
    results = {name: _run(corpus, work / f"out-{name}", name == "reid", a.workers) for name in ("reid", "colour")}
    load1 = load_average()
    (work / "tracking.json").write_text(json.dumps(results, indent=1))
    cmd = f".venv/bin/python bench/tracking_synthetic.py --games {a.games} --seconds {a.seconds:g} " \
          f"--cutaways {a.cutaways:g} --seed {a.seed}"
    lines = header(cmd, f"; 1-minute load average {load0:.1f} before, {load1:.1f} after")
    lines += ["", f"Held-out synthetic games: {a.games} games x 2 halves x {a.seconds:g} s, seed {a.seed} (stadiums, kits "
              f"and plays no training saw), held-out cameras, 1280x720, cut-aways {a.cutaways:.0%} of the time, "
              f"sampled at 2 fps; people at least 30% visible. Targets: HOTA >= 0.75, IDF1 >= 0.80, team accuracy "
              ">= 0.97, goalkeeper and referee recall >= 0.9.", "",
              "| appearance | HOTA | DetA | AssA | IDF1 | MOTA | ID switches / player-minute | team accuracy "
              "(best permutation) | goalkeeper recall | referee recall | GS-HOTA | HOTA at IoU 0.5 | LocA | HOTA with true identities |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def f(v: object) -> str:
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    for name, r in results.items():
        label = "ReID embeddings (two-stream)" if name == "reid" else "kit colours (no reid stage)"
        lines.append(f"| {label} | {f(r['HOTA'])} | {f(r['DetA'])} | {f(r['AssA'])} | {f(r['IDF1'])} | {f(r['MOTA'])} | "
                     f"{f(r['IDSW_per_player_minute'])} | {f(r.get('team_accuracy'))} "
                     f"({f(r.get('team_accuracy_best_permutation'))}) | {f(r['goalkeeper_recall'])} | "
                     f"{f(r['referee_recall'])} | {f(r.get('GS-HOTA'))} | {f(r.get('HOTA_at_iou_0.5'))} | "
                     f"{f(r.get('LocA'))} | {f(r.get('HOTA_true_identities'))} |")
    h, w = _median_box(corpus)
    lines += ["", f"HOTA averages 19 box-overlap thresholds (IoU 0.05 to 0.95); the people here are {h:.0f} px tall and "
              f"{w:.0f} px wide (median true box), so at the strict thresholds a pixel of box error decides a match. "
              "HOTA at IoU 0.5 and "
              "LocA (mean IoU of matched boxes) show that part apart; GS-HOTA judges pitch positions instead. HOTA "
              "with true identities gives each detection the identity of the true person it overlaps at IoU >= 0.5: "
              "what a perfect association of these detections would score, the ceiling the detector sets."]
    lines += ["", "Cost (worker seconds from the manifests, per sampled frame):", ""]
    for name, r in results.items():
        total = sum(r["seconds"].values())
        game = r["seconds"].get("tracking", 0.0) + r["seconds"].get("teams", 0.0)
        lines.append(f"- {name}: {r['frames']} sampled frames; tracking {r['seconds'].get('tracking', 0.0) / r['frames'] * 1000:.1f} ms "
                     f"and teams {r['seconds'].get('teams', 0.0) / r['frames'] * 1000:.1f} ms per frame, "
                     f"{game / total:.2%} of the chain's {total / r['frames']:.2f} s per frame")
    publish("Tracking and teams", "\n".join(lines), write=not a.no_write)
    tmp.cleanup()


if __name__ == "__main__":
    main()

"""Calibration quality and speed on synthetic broadcast clips from held-out cameras of the prior.

Synthesizes (or reuses, with ``--keep``) a corpus whose main cameras come only from the prior's "heldout" split,
none of which built the dictionary of views, with cut-aways (close-ups and crowd shots) for a share of the time;
runs ``matchflow run`` with the stages ``frames`` and ``calibration``; evaluates with ``matchflow eval
calibration`` (World Cup 2014 IoU part / entire over main-camera frames showing at least a fifth of the pitch,
the share of them valid, and the false valid rate on cut-aways); writes the figures to bench/RESULTS.md.

    .venv/bin/python bench/calibration.py [--games 3] [--seconds 40] [--cutaways 0.15] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from common import header, publish, work_folder

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--cutaways", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", help="folder to keep the corpus and output in (the corpus is reused when present)")
    args = ap.parse_args()
    tmp, base = work_folder(args.keep, "matchflow-calib-")
    corpus, out = base / "corpus", base / "out"
    mf = [sys.executable, "-m", "matchflow.cli"]
    if not corpus.exists():
        subprocess.run(mf + ["synth", str(corpus), "--games", str(args.games), "--halves", "1", "--seconds",
                             str(args.seconds), "--seed", str(args.seed), "--cameras", "heldout", "--cutaways",
                             str(args.cutaways)], check=True)
    config = base / "calibration.yaml"
    config.write_text("stages: [frames, calibration]\n")
    run = subprocess.run(mf + ["run", str(corpus), "--out", str(out), "--config", str(config), "--workers",
                               str(args.workers), "--force"], check=True, capture_output=True, text=True)
    print(run.stdout)
    report_json = base / "eval.json"
    ev = subprocess.run(mf + ["eval", "calibration", str(out), str(corpus), "--json", str(report_json)],
                        check=True, capture_output=True, text=True)
    print(ev.stdout)
    report = json.loads(report_json.read_text())
    seconds, frames = 0.0, 0
    for m in (out / "manifests").glob("*.json"):
        d = json.loads(m.read_text())
        seconds += d["seconds"].get("calibration", 0.0)
        frames += d["sampled_frames"]
    run_line = next((ln for ln in run.stdout.splitlines() if ln.startswith("run ")), "")
    cmd = (f".venv/bin/python bench/calibration.py --games {args.games} --seconds {args.seconds:g} "
           f"--cutaways {args.cutaways:g} --workers {args.workers}")
    body = "\n".join([
        *header(cmd),
        f"Corpus: `matchflow synth --cameras heldout --cutaways {args.cutaways:g} --seed {args.seed}`: {args.games} "
        f"games x 1 half x {args.seconds:g} s, 1280x720, main cameras from the prior's held-out split (none built "
        "the dictionary); stages frames + calibration, default parameters (classical segmentation, chamfer "
        "retrieval over the GMM dictionary, line fit, native-resolution fit).",
        "",
        "```",
        ev.stdout.strip(),
        "```",
        "",
        f"Targets: IoU part mean >= 0.95, IoU entire mean >= 0.90, valid >= 95% on the evaluated frames; cut-aways "
        f"not valid. Reached: part mean **{report['iou_part_mean']:.3f}**, entire mean "
        f"**{report['iou_entire_mean']:.3f}**, valid **{100 * report['valid_rate']:.1f}%**, false valid on "
        f"cut-aways **{100 * (report['false_valid_rate'] or 0):.1f}%** ({report['negative_frames']} frames).  ",
        f"Speed: calibration stage {seconds:.1f} s of worker time for {frames} frames "
        f"(**{frames / max(seconds, 1e-9):.2f} frames/s per core**); {run_line}",
    ])
    publish("Calibration", body)
    tmp.cleanup()


if __name__ == "__main__":
    main()

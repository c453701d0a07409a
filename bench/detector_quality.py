"""Detector quality on the labelled validation splits: the targets of the detection issue.

- soccer valid split (38 real 1080p Bundesliga frames, Roboflow): box AP50 of people (target >= 0.85), AP50
  per class, class accuracy of matched boxes, ball bDQ (target >= 0.6);
- basketball valid split (32 real frames, Roboflow): box AP50 of players and referees (target >= 0.80);
- synthetic renders with known masks and joints (``matchflow synth-detection``, a seed and cameras the
  training set did not use): pSQ, pDQ, OKS AP / AR, plus the box metrics.

Writes the "Detector quality" section of bench/RESULTS.md.

    .venv/bin/python bench/detector_quality.py --soccer ROOT --basketball ROOT --synthetic DIR [--weights FILE]

The synthetic split of bench/RESULTS.md:
``matchflow synth-detection train-runs/synth-det-eval --frames 64 --seed 2 --cameras heldout``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common import invocation, machine_description, publish

HERE = Path(__file__).resolve().parent


def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--soccer", required=True)
    ap.add_argument("--basketball", required=True)
    ap.add_argument("--synthetic", required=True)
    ap.add_argument("--weights", help="detector weights (default: the shipped ones)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from matchflow.models.detection.detector import Detector
    from matchflow.training.detection.evaluate import evaluate_detector, read_split

    det = Detector(args.weights, device=args.device)
    runs = {
        "soccer valid (38 real 1080p frames)": evaluate_detector(det, read_split("yolo", args.soccer, "valid")),
        "basketball valid (32 real frames)": evaluate_detector(det, read_split("yolo", args.basketball, "valid")),
        "synthetic held-out renders": evaluate_detector(det, read_split("synthetic", args.synthetic)),
    }
    rows = [
        "| split | frames | people | box AP50 people | AP50 player / goalkeeper / referee | class accuracy "
        "| ball bDQ (paper) | ball bDQ (ROC) | pSQ | pDQ | OKS AP | OKS AR |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, m in runs.items():
        per = m["ap50_per_class"]
        rows.append(
            f"| {name} | {m['frames']} | {m['people']} | {_f(m['ap50_people'])} | "
            f"{' / '.join(_f(per.get(c)) for c in ('player', 'goalkeeper', 'referee'))} | {_f(m['class_accuracy'])} | "
            f"{_f(m['ball_bdq'])} | {_f(m['ball_bdq_absent_negatives'])} | {_f(m.get('psq'))} | {_f(m.get('pdq'))} | "
            f"{_f(m.get('oks_ap'))} | {_f(m.get('oks_ar'))} |"
        )
    body = "\n".join([
        f"Machine: {machine_description()}.",
        f"Command: `{invocation(__file__)}`",
        f"Weights: `{det.weights_path.name}` (sha256 `{det.sha256}`), input height {det.input_height} px.",
        "",
        "Targets: soccer box AP50 of people >= 0.85 and ball bDQ >= 0.6; basketball box AP50 >= 0.80. "
        "bDQ (paper) is appendix A's ROC (false-positive rate over all frames); bDQ (ROC) takes the frames "
        "without a ball as the negatives. A goalkeeper AP of n/a means the split has none.",
        "",
        *rows,
    ])
    publish("Detector quality", body, write=not args.no_write)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""The detector's working height, chosen on training frames (never on the validation split).

Evaluates the shipped weights at several working heights on every 12th frame of the soccer *train* split
(51 real 1080p Bundesliga frames, Roboflow, CC BY 4.0): box AP50 of people, class accuracy, ball bDQ and speed
(one thread). The detection stage's default (``models.detection.detector.DEFAULT_INPUT_HEIGHT``) is the height chosen
here; the validation split is evaluated once, at that height, by bench/detector_quality.py.

Writes the "Detector working height" section of bench/RESULTS.md.

    .venv/bin/python bench/detector_scale.py --soccer ../shared/data/soccer-players-detection [--heights 540 720]
"""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

from common import invocation, machine_description, update_section

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--soccer", required=True, help="Roboflow soccer-players-detection root")
    ap.add_argument("--heights", type=int, nargs="+", default=[540, 648, 720, 810, 900])
    ap.add_argument("--every", type=int, default=12, help="take every N-th training frame")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import torch

    from matchflow.models.detection.detector import DEFAULT_INPUT_HEIGHT, Detector
    from matchflow.training.detection.data import read_yolo_split
    from matchflow.training.detection.evaluate import evaluate_detector

    torch.set_num_threads(1)
    samples = list(itertools.islice(read_yolo_split(args.soccer, "train"), 0, None, args.every))
    rows = []
    for h in args.heights:
        det = Detector(None, device="cpu", input_height=h)
        r = evaluate_detector(det, samples)
        rows.append((h, r["ap50_people"], r["class_accuracy"], r["ball_bdq"], r["frames_per_second"]))
        print(f"height {h}: AP50 people {r['ap50_people']:.3f}, class acc {r['class_accuracy']:.3f}, "
              f"bDQ {r['ball_bdq']:.3f}, {r['frames_per_second']:.2f} frames/s", flush=True)
    table = ["| working height (px) | box AP50 people | class accuracy | ball bDQ | frames/s (1 thread) |",
             "| --- | --- | --- | --- | --- |"]
    table += [f"| {h}{' (default)' if h == DEFAULT_INPUT_HEIGHT else ''} | {a:.3f} | {c:.3f} | {b:.3f} | {f:.2f} |"
              for h, a, c, b, f in rows]
    body = "\n".join([
        f"Command: `{invocation(__file__)}`",
        f"Machine: {machine_description()}.",
        "",
        f"{len(samples)} frames of the soccer **train** split (every {args.every}th, 1920x1080), shipped weights. "
        "The shipped weights were trained at 540 px with scale jitter 0.8-1.25 (432 to 675 px).",
        "",
        *table,
        "",
        "Frames/s here were measured while other jobs shared the two cores; bench/detector.py has the speed figures.",
    ])
    if not args.no_write:
        update_section("Detector working height", body)
    os._exit(0)  # decord's threads can hang the interpreter's exit


if __name__ == "__main__":
    main()

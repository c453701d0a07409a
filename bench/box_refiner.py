"""Box refiner: how much closer to the true boxes the refined ones are, and what refining costs per frame.

Runs the shipped detector without refinement on real frames the refiner never saw (the soccer set's valid split)
and, with ``--games``, on synthetic corpora; matches its boxes to the true ones (IoU >= 0.5) and scores the
network's boxes against the refined ones: mean IoU, and the share of matched boxes above IoU 0.75 and 0.9.
Also times :func:`detection_features` and the trees per frame.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import header, publish

ROOT = Path(__file__).resolve().parents[1]
SOCCER = ROOT.parent / "shared" / "data" / "soccer-players-detection"


def _row(name: str, s, refiner) -> str:  # type: ignore[no-untyped-def]
    from matchflow.training.detection.box_refiner import paired_iou

    before = paired_iou(s.boxes, s.truth)
    after = paired_iou(refiner.refine(s.boxes, s.features).astype(np.float64), s.truth)
    cells = [f"{v.mean():.3f} / {(v >= 0.75).mean():.3f} / {(v >= 0.9).mean():.3f}" for v in (before, after)]
    return f"| {name} | {len(s)} | {cells[0]} | {cells[1]} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", nargs="*", default=[], help="`matchflow synth` corpora to score as well")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update bench/RESULTS.md")
    a = ap.parse_args()
    from matchflow.models.detection.detector import Detector, detection_features, load_box_refiner_weights
    from matchflow.training.detection.box_refiner import collect, synthetic_game_frames, yolo_frames

    refiner, _, sha = load_box_refiner_weights(None)
    detector = Detector()
    sets = {"real: soccer-players-detection valid (38 Bundesliga frames, 1920x1080)":
            collect(detector, yolo_frames(SOCCER, "valid"))}
    for g in a.games:
        sets[f"synthetic: {g}"] = collect(detector, synthetic_game_frames(g))
    # cost of refining one frame: features from masks and keypoints, then the trees
    frames = [image for _, image, _ in yolo_frames(SOCCER, "valid")][:8]
    dets = [detector.detect(f[None])[0] for f in frames]
    t0 = time.perf_counter()
    for d in dets:
        refiner.refine(d.boxes, detection_features(d))
    per_frame = (time.perf_counter() - t0) / len(dets)
    t0 = time.perf_counter()
    for f in frames:
        detector.detect(f[None])
    detect = (time.perf_counter() - t0) / len(frames)
    games = " ".join(a.games)
    cmd = ".venv/bin/python bench/box_refiner.py" + (f" --games {games}" if games else "")
    lines = header(cmd)
    lines += ["", f"Shipped refiner `box_refiner.npz` (SHA-256 {sha[:12]}...). Boxes the detector matched to true ones at "
              "IoU >= 0.5; each cell: mean IoU / share at IoU >= 0.75 / share at IoU >= 0.9.", "",
              "| frames | matched boxes | network's boxes | refined boxes |", "| --- | --- | --- | --- |"]
    lines += [_row(name, s, refiner) for name, s in sets.items()]
    lines += ["", f"Cost: {per_frame * 1000:.1f} ms per frame (features and trees, {np.mean([len(d.boxes) for d in dets]):.0f} "
              f"people per frame) beside {detect:.2f} s for the detector on the same 1920x1080 frames (one process)."]
    publish("Box refiner", "\n".join(lines), write=not a.no_write)


if __name__ == "__main__":
    main()

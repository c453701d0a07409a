"""Detector throughput: 720p frames per second of batched DeepSportLab inference (forward pass and decoding).

Times :meth:`matchflow.models.detector.Detector.detect` on batches of real-looking 1280x720 frames (a
synthetic corpus's frames when ``--frames-from`` names a ``matchflow synth-detection`` folder, otherwise
frames rendered on the fly), after warm-up rounds, with torch using ``--threads`` threads (default: every
core). Reports frames per second and frames per second per core on CPU, and on CUDA (bf16) when
``--device cuda``. Writes the "Detector speed (<device>)" section of bench/RESULTS.md.

    .venv/bin/python bench/detector.py [--device cpu|cuda] [--batch 4] [--rounds 5] [--weights FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import invocation, machine_description, publish, timed_rounds  # noqa: E402


def _frames(n: int, source: str | None) -> np.ndarray:
    import cv2

    if source:
        files = sorted(Path(source, "images").glob("*.jpg"))[:n]
        imgs = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        imgs = [cv2.resize(i, (1280, 720)) for i in imgs]
    else:
        from matchflow.synth.detection import render_detection_dataset
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            render_detection_dataset(d, frames=n, seed=7, width=1280, height=720, workers=1)
            return _frames(n, d)
    return np.stack(imgs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--weights", help="detector weights (default: the shipped ones)")
    ap.add_argument("--frames-from", help="a `matchflow synth-detection` folder to take frames from")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from matchflow.models.detector import Detector

    det = Detector(args.weights, device=args.device, batch_size=args.batch)
    frames = _frames(args.batch, args.frames_from)
    det.detect(frames)  # warm-up
    times, _, out = timed_rounds(lambda: det.detect(frames), args.rounds, args.device)
    people = sum(len(d.scores) for d in out)
    med = statistics.median(times)
    fps = len(frames) / med
    cores = args.threads if args.device == "cpu" else None
    dev = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(0) + " (bf16)"
    rows = [
        "| device | batch | input (working size) | median s / batch | frames / s | frames / s / core |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {dev} | {len(frames)} | 1280x720 ({det.input_height} px high) | {med:.3f} | {fps:.2f} | "
        f"{fps / cores:.2f} |" if cores else
        f"| {dev} | {len(frames)} | 1280x720 ({det.input_height} px high) | {med:.3f} | {fps:.1f} | - |",
    ]
    body = "\n".join([
        f"Machine: {machine_description()}; torch threads: {args.threads}.",
        f"Command: `{invocation(__file__)}`",
        f"Weights: `{det.weights_path.name}` (sha256 {det.sha256[:16]}...); people found per batch: {people}; "
        f"{args.rounds} timed rounds after one warm-up, median. Times include resizing, the forward pass and "
        "the decoders (fusion, centres, masks, keypoints).",
        "",
        *rows,
    ])
    publish(f"Detector speed ({args.device})", body, write=not args.no_write)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

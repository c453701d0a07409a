"""Detector throughput: 720p frames per second of batched DeepSportLab inference (forward pass and decoding).

Times :meth:`matchflow.models.detection.detector.Detector.detect` on batches of real-looking 1280x720 frames (a
synthetic corpus's frames when ``--frames-from`` names a ``matchflow synth-detection`` folder, otherwise
frames rendered on the fly), after a warm-up round. Two ways to use the CPU:

- ``--processes N`` (N >= 1): N processes of one torch thread each, timed together (a barrier starts their
  rounds at once); this is how the pipeline runs, one single-threaded Dask worker per core, so the frames per
  second per core include what the processes cost each other (memory bandwidth, shared caches);
- otherwise one process with ``--threads`` torch threads (default: every core).

Reports frames per second and frames per second per core on CPU, and on CUDA (bf16) when ``--device cuda``.
Writes the "Detector speed (<device>)" section of bench/RESULTS.md.

    .venv/bin/python bench/detector.py [--device cpu|cuda] [--batch N] [--processes N | --threads N] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from common import invocation, machine_description, publish, timed_rounds

HERE = Path(__file__).resolve().parent


def _frames(n: int, source: str | None) -> np.ndarray:
    import cv2

    if source:
        files = sorted(Path(source, "images").glob("*.jpg"))[:n]
        imgs = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        imgs = [cv2.resize(i, (1280, 720)) for i in imgs]
    else:
        import tempfile

        from matchflow.synth.detection import render_detection_dataset

        with tempfile.TemporaryDirectory() as d:
            render_detection_dataset(d, frames=n, seed=7, width=1280, height=720, workers=1)
            return _frames(n, d)
    return np.stack(imgs)


def _measure(args: argparse.Namespace, threads: int, barrier=None) -> dict:  # multiprocessing Barrier
    """Build the detector, warm it up, wait at ``barrier`` (when given) and time ``args.rounds`` rounds over the frames."""
    torch.set_num_threads(threads)
    from matchflow.models.detection.detector import Detector

    det = Detector(args.weights, device=args.device, batch_size=args.batch)
    frames = _frames(max(args.frames, det.batch_size), args.frames_from)
    det.detect(frames)  # warm-up
    if barrier is not None:
        barrier.wait()
    times, _, out = timed_rounds(lambda: det.detect(frames), args.rounds, args.device)
    return {
        "times": times, "frames": len(frames), "batch": det.batch_size, "people": sum(len(d.scores) for d in out),
        "input_height": det.input_height, "weights": det.weights_path.name, "sha256": det.sha256,
    }


def _process(args: argparse.Namespace, barrier, queue) -> None:  # multiprocessing objects
    queue.put(_measure(args, 1, barrier))
    queue.close()
    queue.join_thread()  # the result is in the pipe before the exit below
    sys.stdout.flush()
    os._exit(0)  # decord's threads can hang a normal exit


def _in_processes(args: argparse.Namespace) -> list[dict]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(args.processes), ctx.Queue()
    procs = [ctx.Process(target=_process, args=(args, barrier, queue)) for _ in range(args.processes)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--batch", type=int, help="frames per forward pass (default: the detector's for the device)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=8, help="frames per timed round, in batches (default 8)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of the single process")
    ap.add_argument("--processes", type=int, default=0,
                    help="CPU: this many single-threaded processes at once instead of one process")
    ap.add_argument("--weights", help="detector weights (default: the shipped ones)")
    ap.add_argument("--frames-from", help="a `matchflow synth-detection` folder to take frames from")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    if args.processes and args.device != "cpu":
        ap.error("--processes is for --device cpu")
    runs = _in_processes(args) if args.processes else [_measure(args, args.threads)]
    first = runs[0]
    n, people = first["frames"], first["people"]
    meds = [statistics.median(r["times"]) / n for r in runs]
    fps = sum(1 / m for m in meds)  # the processes ran side by side: their rates add up
    cores = (args.processes or args.threads) if args.device == "cpu" else None
    layout = (f"{args.processes} processes x 1 thread" if args.processes else f"1 process x {args.threads} threads")
    dev = "CPU" if args.device == "cpu" else torch.cuda.get_device_name(0) + " (bf16)"
    size = f"1280x720 ({first['input_height']} px high)"
    med = " / ".join(f"{m:.3f}" for m in meds)
    batch = first["batch"]
    rows = [
        "| device | workers | batch | input (working size) | median s / frame | frames / s | frames / s / core |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {dev} | {layout} | {batch} | {size} | {med} | {fps:.2f} | {fps / cores:.2f} |" if cores else
        f"| {dev} | 1 process | {batch} | {size} | {med} | {fps:.1f} | - |",
    ]
    body = "\n".join([
        f"Machine: {machine_description()}.",
        f"Command: `{invocation(__file__)}`",
        f"Weights: `{first['weights']}` (sha256 {first['sha256'][:16]}...); each round detects in the same {n} frames "
        f"({people} people found); {args.rounds} timed rounds after one warm-up, median (one median per process). "
        "Times include resizing, the forward pass and the decoders (fusion, centres, masks, keypoints).",
        "",
        *rows,
    ])
    publish(f"Detector speed ({args.device})", body, write=not args.no_write)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

"""Re-identification speed on CPU: crops per second per core of each model, and the cost per sampled frame.

Each model embeds the same crops (letterboxed person crops of a rendered frame, repeated) with torch limited to
one thread (``--threads``), after a warm-up; the cost per sampled frame is the time of ``--people`` crops (about
the people a broadcast frame shows), crop cutting included (:meth:`Embedder.embed` on a 1280x720 frame).

    .venv/bin/python bench/reid_speed.py [--weights FILE] [--osnet OSNET.pt] [--threads 1] [--people 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from matchflow.models.reid.embedder import Embedder, save_two_stream
from matchflow.models.reid.network import TwoStreamReID


def _rate(fn, n: int, rounds: int = 3) -> float:  # type: ignore[no-untyped-def]
    fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", help="two-stream weights (default: the shipped ones, else an untrained network: "
                    "speed does not depend on the values)")
    ap.add_argument("--osnet", help="a torchreid OSNet x0.25 checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--crops", type=int, default=256)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    x1 = rng.uniform(0, 1200, a.people)
    y1 = rng.uniform(0, 600, a.people)
    h = rng.uniform(50, 120, a.people)
    boxes = np.stack([x1, y1, x1 + h * 0.45, y1 + h], axis=1)
    keypoints = np.concatenate([rng.uniform(boxes[:, None, :2], boxes[:, None, 2:], (a.people, 17, 2)),
                                np.ones((a.people, 17, 1))], axis=2)
    weights = a.weights
    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            try:
                Embedder("two-stream")
            except Exception:
                weights = str(Path(tmp) / "untrained.pt")
                save_two_stream(TwoStreamReID().eval(), weights)
        models = {"two-stream": Embedder("two-stream", weights), "histogram": Embedder("histogram")}
        if a.osnet:
            models["osnet_x0_25"] = Embedder("osnet_x0_25", a.osnet)
        out = {}
        for name, emb in models.items():
            crops, heat = emb.crops(frame, boxes, keypoints)
            reps = max(1, a.crops // len(crops))
            many = np.concatenate([crops] * reps)
            hm = np.concatenate([heat] * reps) if heat is not None else None
            per_core = _rate(lambda: emb.embed_crops(many, hm), len(many)) / a.threads
            per_frame = 1.0 / _rate(lambda: emb.embed(frame, boxes, keypoints), 1)
            out[name] = {"crops_per_second_per_core": round(per_core, 1),
                         f"seconds_per_frame_of_{a.people}_people": round(per_frame, 4)}
    out["machine"] = f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {a.threads} thread(s)"
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Re-identification on a GPU, end to end: render, train, evaluate, time (driven by bench/reid_gpu.sh).

1. Render a synthetic ReID training set (``matchflow synth-detection``, World Cup 2014 *dictionary* cameras,
   seed 11) and a held-out set (other seed, so other stadiums, kits, plays; *held-out* cameras).
2. Train the two-stream network (resnet18, 128 x 64) on the training set on the GPU.
3. Evaluate on the held-out set with action-scoped matching: the two-stream model, OSNet x0.25 (MSMT17 weights)
   and the colour-histogram baseline.
4. Time the two-stream embedder (bf16) on the GPU.

Writes ``reid_twostream_resnet18.pt``, ``training.json`` and ``reid_gpu.json`` to ``--out``.

    python bench/reid_gpu.py --steps 3000 --train-frames 4000 --heldout-frames 800 --osnet OSNET.pt --out DIR
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from matchflow.models.reid.embedder import Embedder, save_two_stream
from matchflow.synth.detection import render_detection_dataset
from matchflow.training.reid.data import read_synthetic_reid
from matchflow.training.reid.evaluate import evaluate_reid
from matchflow.training.reid.train import ReidTrainConfig, fit_set, train_reid_steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--train-frames", type=int, default=4000)
    ap.add_argument("--heldout-frames", type=int, default=800)
    ap.add_argument("--osnet", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/reid")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--identities", type=int, default=32, help="identities per batch (4 crops each)")
    a = ap.parse_args()
    out, work = Path(a.out), Path(a.work)
    gpu = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else platform.processor() or "cpu"
    t0 = time.perf_counter()
    render_detection_dataset(work / "train", a.train_frames, seed=11, cameras="dictionary", workers=a.workers)
    render_detection_dataset(work / "heldout", a.heldout_frames, seed=977, cameras="heldout", workers=a.workers)
    t_render = time.perf_counter() - t0
    train = read_synthetic_reid(work / "train")
    held = read_synthetic_reid(work / "heldout", input_size=(256, 128))
    print(f"rendered and read in {time.perf_counter() - t0:.0f} s: train {len(train)} crops "
          f"({len(np.unique(train.identity))} identities), held-out {len(held)} crops", flush=True)
    cfg = ReidTrainConfig(steps=a.steps, identities=a.identities, per_identity=4, lr=6e-4, warmup=300, checkpoint_every=1000,
                          sources=["synthetic dictionary cameras, seed 11"])
    t1 = time.perf_counter()
    net, train_report = train_reid_steps(train, cfg, work / "run", a.steps, device=a.device, progress=print)
    t_train = time.perf_counter() - t1
    weights = out / "reid_twostream_resnet18.pt"
    sha = save_two_stream(net.cpu(), weights)
    training = {"weights": weights.name, "sha256": sha, "config": asdict(cfg), "train": train_report,
                "data": {"train_frames": a.train_frames, "train_crops": len(train),
                         "train_identities": int(len(np.unique(train.identity))), "seed": 11, "cameras": "dictionary"},
                "device": gpu, "torch": torch.__version__, "seconds": round(t_train, 1),
                "render_seconds": round(t_render, 1), "machine": platform.node()}
    (out / "training.json").write_text(json.dumps(training, indent=1))
    results = {}
    for name, w in (("two-stream", weights), ("osnet_x0_25", a.osnet), ("histogram", None)):
        results[name] = evaluate_reid(Embedder(name, w, device=a.device), held)
        print(name, {k: results[name][k] for k in ("rank1", "mAP", "queries", "crops_per_second")}, flush=True)
    # speed: the two-stream embedder in bf16 on a large batch of crops, after a warm-up
    emb = Embedder("two-stream", weights, device=a.device, batch_size=1024)
    fitted = fit_set(held.subset(np.arange(min(1024, len(held)))), emb.input_size)
    crops = np.repeat(fitted.crops, 8, axis=0)
    heat = np.repeat(fitted.heatmaps.astype(np.float32), 8, axis=0)
    emb.embed_crops(crops[:1024], heat[:1024])
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    sync()
    t2 = time.perf_counter()
    emb.embed_crops(crops, heat)
    sync()
    speed = len(crops) / (time.perf_counter() - t2)
    report = {"heldout": {"frames": a.heldout_frames, "crops": len(held), "seed": 977, "cameras": "heldout"},
              "results": results, "gpu_crops_per_second_bf16": round(speed, 1), "gpu": gpu}
    (out / "reid_gpu.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()

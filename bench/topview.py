"""Top-view and feature-vector throughput, per core.

Top views: the colour composition and the binary channels of one frame (:class:`matchflow.models.representations.topview.
TopviewRenderer.render`), and the ``topview`` stage on batches of 16 frames with their table rows (what the
pipeline runs), single-threaded (``cv2.setNumThreads(1)``, ``torch.set_num_threads(1)``). Inputs are
realistic: every camera of the World Cup 2014 prior (``matchflow/data/wc14_camera_prior.json``, 1280x720) in
turn, 22 players on the seen part of the pitch in two kit colours, plus a referee and two people off the
field per frame.

Feature vectors: :class:`matchflow.models.representations.features.FeatureExtractor` on batches of colour
compositions, ``mobilenetv2`` with its packaged ImageNet weights and ``resnet34`` with randomly initialised
weights (no ImageNet ResNet-34 weights ship; the speed is the same). On CPU: fp32, ``--threads`` threads
(default 1); on CUDA (``--device cuda``): bf16 autocast. Writes the "Top views and features (<device>)"
section of bench/RESULTS.md.

    .venv/bin/python bench/topview.py [--device cpu|cuda] [--frames 2000] [--feature-frames 64] [--batch 32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import invocation, load_average, machine_with_load, publish, timed_rounds

HERE = Path(__file__).resolve().parent

SIZE = (1280, 720)


def _inputs(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame: pitch-to-image homography, positions (25, 2) m, colours (25, 3) uint8, on_field (25,)."""
    import cv2

    from matchflow.models.geometry.camera_prior import load_camera_prior
    from matchflow.models.geometry.pitch import PitchModel

    prior = load_camera_prior()
    names = sorted(prior)
    rng = np.random.default_rng(seed)
    kits = np.array([[230, 230, 30], [20, 60, 220], [20, 20, 20]], np.uint8)
    pitch = PitchModel()
    out = []
    for i in range(n):
        h = prior[names[i % len(names)]]
        poly = pitch.visible_polygon(h, SIZE)
        contour = poly.astype(np.float32).reshape(-1, 1, 2)
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        pts: list[np.ndarray] = []
        while len(pts) < 23:
            p = rng.uniform(lo, hi)
            if cv2.pointPolygonTest(contour, (float(p[0]), float(p[1])), False) > 0:
                pts.append(p)
        pts += [np.array([rng.uniform(-50, 50), 36.0]), np.array([np.nan, np.nan])]  # a steward, no position
        col = kits[np.r_[rng.integers(0, 2, 22), 2, 2, 2]]
        on_field = np.r_[np.ones(23, bool), False, True]
        out.append((h, np.array(pts), col, on_field))
    return out


def bench_render(inputs, rounds: int) -> dict[str, float]:
    """Median seconds per frame: the renderer alone, and the ``topview`` stage on batches of 16 frames."""
    from matchflow.models.representations.topview import renderer
    from matchflow.stages.base import Batch, HalfContext
    from matchflow.stages.topview import TopviewStage
    from matchflow.video import VideoInfo

    r = renderer("ccbv")
    cc = np.empty((224, 224, 3), np.uint8)
    bc = np.empty((3, 224, 224), np.uint8)

    def render_all() -> None:
        for h, pos, col, on in inputs:
            r.render(h, SIZE, pos[on], col[on], out_cc=cc, out_bc=bc)

    wall, cpu, _ = timed_rounds(render_all, rounds)
    per_frame = [s / len(inputs) for s in wall]
    cpu_frame = [s / len(inputs) for s in cpu]

    stage = TopviewStage()
    ctx = HalfContext("g", "g", 1, VideoInfo("x.mp4", 10**6, 25.0, *SIZE), 2.0)
    image = np.zeros((16, 1, 1, 3), np.uint8)  # only the shape's width and height are read
    image = np.lib.stride_tricks.as_strided(image, (16, SIZE[1], SIZE[0], 3), (0, 0, 0, 1))
    batches = []
    for s in range(0, len(inputs) - 15, 16):
        chunk = inputs[s : s + 16]
        frames = np.arange(s, s + 16, dtype=np.int32)
        b = Batch(ctx, frames, frames * 12, frames / 2.0, image)
        b.tables["calibration"] = {"frame": frames, "homography_inv": [h.ravel().tolist() for h, *_ in chunk],
                                   "valid": np.ones(16, bool)}
        n = [len(p) for _, p, _, _ in chunk]
        pos = np.concatenate([p for _, p, _, _ in chunk]).astype(np.float32)
        col = np.concatenate([c for _, _, c, _ in chunk])
        b.tables["players"] = {"frame": np.repeat(frames, n), "pitch_x": pos[:, 0], "pitch_y": pos[:, 1],
                               "on_field": np.concatenate([o for *_, o in chunk]),
                               "color_r": col[:, 0], "color_g": col[:, 1], "color_b": col[:, 2]}
        b._allowed = frozenset(stage.writes)
        batches.append(b)

    def process_all() -> None:
        for b in batches:
            stage.process(b)

    wall, cpu, _ = timed_rounds(process_all, rounds)
    per_frame_stage = [s / (16 * len(batches)) for s in wall]
    cpu_stage = [s / (16 * len(batches)) for s in cpu]
    med = statistics.median
    return {"render": med(per_frame), "stage": med(per_frame_stage), "render_cpu": med(cpu_frame),
            "stage_cpu": med(cpu_stage)}


def bench_features(backbone: str, views: np.ndarray, device: str, batch: int, rounds: int) -> tuple[float, float, str]:
    """Median wall and process (CPU) seconds per top view of the feature extractor, and a note on its weights."""
    import torch

    from matchflow.models.representations.features import FeatureExtractor, build_backbone

    with tempfile.TemporaryDirectory() as d:
        weights = None
        note = "packaged ImageNet weights"
        if backbone != "mobilenetv2":
            weights = Path(d) / f"{backbone}.pt"
            torch.save(build_backbone(backbone).state_dict(), weights)
            note = "random weights (speed only)"
        fe = FeatureExtractor(backbone, weights, device=device, batch_size=batch)
    fe(views[:batch])  # warm-up
    wall, cpu, _ = timed_rounds(lambda: fe(views), rounds, device)
    return (statistics.median([s / len(views) for s in wall]), statistics.median([s / len(views) for s in cpu]),
            note)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--frames", type=int, default=2000, help="frames rendered per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--feature-frames", type=int, default=64, help="top views per feature round")
    ap.add_argument("--feature-rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32, help="top views per forward pass")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the CPU feature runs")
    ap.add_argument("--backbones", default="mobilenetv2,resnet34")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    from matchflow.models.representations.topview import renderer

    load0 = load_average()
    inputs = _inputs(args.frames)
    t = bench_render(inputs, args.rounds)
    r = renderer("ccbv")
    views = np.stack([r.render(h, SIZE, p[o], c[o])[0] for h, p, c, o in inputs[: args.feature_frames]])
    torch.set_num_threads(args.threads)
    feats = {b: bench_features(b, views, args.device, args.batch, args.feature_rounds)
             for b in args.backbones.split(",") if b}
    load1 = load_average()
    dev = "CPU fp32" if args.device == "cpu" else torch.cuda.get_device_name(0) + " (bf16 autocast)"
    rows = [
        "| what | wall ms / frame | CPU ms / frame | frames / s per core (from CPU time) | frames / s (wall) |",
        "| --- | --- | --- | --- | --- |",
        f"| render CC + BC (renderer alone, 1 thread) | {t['render'] * 1e3:.3f} | {t['render_cpu'] * 1e3:.3f} | "
        f"{1 / t['render_cpu']:.0f} | {1 / t['render']:.0f} |",
        f"| `topview` stage, batches of 16 with table rows (1 thread) | {t['stage'] * 1e3:.3f} | "
        f"{t['stage_cpu'] * 1e3:.3f} | {1 / t['stage_cpu']:.0f} | {1 / t['stage']:.0f} |",
    ]
    threads = f"{args.threads} thread{'s' if args.threads > 1 else ''}" if args.device == "cpu" else "GPU"
    for b, (sec, cpu, note) in feats.items():
        per = f"{1 / cpu:.1f}" if args.device == "cpu" else "-"
        rows.append(f"| features `{b}` on {dev}, batch {args.batch}, {threads} ({note}) | {sec * 1e3:.2f} | "
                    f"{cpu * 1e3:.2f} | {per} | {1 / sec:.1f} |")
    body = "\n".join([
        f"Command: `{invocation(__file__).strip()}`  ",
        f"{machine_with_load(load0, load1)} the run "
        "(other jobs may share the cores: the wall figures then drop; the CPU-time figures, process time of this "
        "single-threaded process, much less so).  ",
        f"Inputs: {args.frames} frames cycling over the 209 cameras of the WC14 prior (1280x720), 22 players on the "
        "seen pitch in two kits, a referee, an off-field person and one without a position per frame; layout "
        f"ccbv. Top views: median of {args.rounds} rounds; features: {args.feature_frames} colour compositions, "
        f"median of {args.feature_rounds} rounds after one warm-up batch.",
        "",
        *rows,
    ])
    publish(f"Top views and features ({args.device})", body, write=not args.no_write)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

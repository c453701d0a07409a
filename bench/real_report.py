"""The HTML report of a run on real broadcast footage: ``bench/report-real/index.html``.

Real frames: the 38 Bundesliga broadcast frames (1920x1080) of the valid split of the soccer-players-detection
data set, "football-players-detection" by roboflow-jvuqo on Roboflow Universe
(https://universe.roboflow.com/roboflow-jvuqo/football-players-detection-3zvbc/dataset/1), licence CC BY 4.0.
Roboflow's export applied a 50 % horizontal flip and a +-20 % brightness change to some of them.

Steps: (1) the frames become a one-half "game" video in a corpus folder: each image held for 1 s at 25 fps
(a hard cut every second), H.264 (PyAV, a key frame at every image), 1920x1080; (2) the corpus flow runs on it
at 1 fps (one sampled frame per image) with the stages frames, calibration, detection, plus localization,
graph and topview when they are registered; (3) ``matchflow report``'s code writes the page, frames
downscaled to 640 px, JPEG quality 70, with the data set credited on the page.

    .venv/bin/python bench/real_report.py [--images DIR] [--work DIR] [--html bench/report-real/index.html]
                                          [--workers 2] [--memory-limit auto] [--frames-per-half 8] [--skip-run]

``--work`` (default ``/tmp/matchflow-real-report``) holds the corpus and the output root; ``--skip-run`` only
rewrites the page from an earlier run there. Takes a few minutes of CPU (calibration is 1 to 2.5 s per frame).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_IMAGES = HERE.parents[1] / "shared/data/soccer-players-detection/valid/images"
CREDITS = ("Frames: the 38 Bundesliga broadcast frames of the valid split of \"football-players-detection\" "
           "(roboflow-jvuqo, Roboflow Universe, "
           "https://universe.roboflow.com/roboflow-jvuqo/football-players-detection-3zvbc/dataset/1), "
           "licence CC BY 4.0; some are horizontally flipped by Roboflow's augmentation. Each image is held "
           "for 1 s in a 25 fps H.264 video and the run samples 1 frame per second, so every sampled frame "
           "is one image (a hard cut each time). The frames come from several matches, so the two kit-colour groups "
           "below are not two teams of one match.")
GAME = "roboflow-bundesliga-valid"
SIZE = (1920, 1080)


def make_video(images: Path, dest: Path, fps: int = 25, hold_s: float = 1.0) -> int:
    """Write the images of ``images`` (sorted by name) as one H.264 video, each held ``hold_s`` seconds."""
    from matchflow.synth.video import H264Writer

    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        sys.exit(f"no images in {images}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    hold = max(1, round(fps * hold_s))
    with H264Writer(dest, SIZE[0], SIZE[1], fps=fps, gop=hold, crf=20) as video:
        for p in paths:
            bgr = cv2.imread(str(p))
            if bgr is None:
                sys.exit(f"{p}: not an image")
            if (bgr.shape[1], bgr.shape[0]) != SIZE:
                bgr = cv2.resize(bgr, SIZE, interpolation=cv2.INTER_AREA)
            bgr = np.ascontiguousarray(bgr)
            for _ in range(hold):
                video.write(bgr)
    return len(paths)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=str(DEFAULT_IMAGES))
    ap.add_argument("--work", default="/tmp/matchflow-real-report")
    ap.add_argument("--html", default=str(HERE / "report-real" / "index.html"))
    ap.add_argument("--workers", type=int, default=2, help="Dask workers (default 2)")
    ap.add_argument("--memory-limit", default="auto", help="memory limit per worker (default auto: memory / workers)")
    ap.add_argument("--frames-per-half", type=int, default=8)
    ap.add_argument("--skip-run", action="store_true", help="only rewrite the page from the run under --work")
    args = ap.parse_args()

    from matchflow.cli import _setup_logging

    _setup_logging(False)  # before Prefect is imported: it reads its logging settings once, at import
    from matchflow.html_report import build_report

    work = Path(args.work)
    corpus, out = work / "corpus", work / "out"
    if not args.skip_run:
        from matchflow.config import PipelineConfig
        from matchflow.flows.corpus import run_corpus
        from matchflow.prefect_env import local_api
        from matchflow.stages.registry import available

        t0 = time.perf_counter()
        video = corpus / GAME / "1_1080p.mp4"
        if video.exists() and video.stat().st_mtime > max(p.stat().st_mtime for p in Path(args.images).iterdir()):
            print(f"video: reusing {video}", flush=True)
        else:
            n = make_video(Path(args.images), video)
            print(f"video: {n} images, 1 s each, in {time.perf_counter() - t0:.1f} s", flush=True)
        stages = ["frames", "calibration", "detection"]
        stages += [s for s in ("localization", "graph", "topview") if s in available()]
        cfg = PipelineConfig(fps=1.0, workers=args.workers, chunk_frames=4, batch_frames=2, retries=1,
                             memory_limit=args.memory_limit, stages=stages)
        print(f"running stages {stages} at 1 fps on {args.workers} workers", flush=True)
        with local_api():
            summary = run_corpus(str(corpus), str(out), cfg, force=True)
        print(f"{len(summary.committed)} committed, {len(summary.failed)} failed; {summary.frames} frames in "
              f"{summary.seconds:.1f} s; worker time by stage: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(summary.stage_seconds.items())), flush=True)
        for game, errors in summary.failed.items():
            print(f"FAILED {game}: {'; '.join(errors)}", file=sys.stderr)
    t0 = time.perf_counter()
    dest = build_report(str(out), args.html, corpus=str(corpus), frames_per_half=args.frames_per_half,
                        title="Matchflow report: real Bundesliga broadcast frames", credits=CREDITS)
    print(f"wrote {dest} ({Path(dest).stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Orchestration overhead of `matchflow run` against a plain loop over the same chunks.

Synthesizes a corpus (default 2 games x 2 halves x 120 s, 1280x720 H.264), then measures:

- the work: a single process calling ``prepare_game`` and ``process_chunk`` on every chunk in turn;
- the flow: the corpus flow on a Dask LocalCluster with 1 and with 2 worker processes, timed from
  the start of the flow body (Prefect server and Dask cluster up) to its end: startup excluded;
- for reference, the whole ``matchflow run`` command's wall time, startup included.

Overhead = flow(1 worker) / work - 1 (target < 10%); speed-up = flow(1 worker) / flow(2 workers)
(target >= 1.7). Writes the figures to bench/RESULTS.md.

    .venv/bin/python bench/overhead.py [--games 2] [--seconds 120] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import header, publish, synthesized_corpus, work_folder

from matchflow.config import PipelineConfig
from matchflow.games import prepare_game
from matchflow.pipeline import Pipeline, build_pipeline, process_chunk
from matchflow.storage.corpus import Game, list_games
from matchflow.storage.layout import OutputLayout

HERE = Path(__file__).resolve().parent


def plain_loop(corpus: str, out: str, cfg: PipelineConfig) -> tuple[float, int]:
    """Seconds and sampled frames of a single-process loop over every chunk of the corpus."""
    pipe = build_pipeline(cfg)
    pipe.setup("cpu")
    layout = OutputLayout.at(out)
    t0 = time.perf_counter()
    frames = sum(_run_game(game, cfg, layout, pipe) for game in list_games(corpus))
    return time.perf_counter() - t0, frames


def _run_game(game: Game, cfg: PipelineConfig, layout: OutputLayout, pipe: Pipeline) -> int:
    """Prepare one game and process its chunks in turn; returns its sampled frames."""
    return sum(process_chunk(s, cfg, layout, pipe).frames for s in prepare_game(game, cfg, layout, pipe).chunks)


def _loop_one_game(args: tuple[str, str, int]) -> int:
    corpus, out, i = args
    cfg = PipelineConfig(stages=["frames"])
    return _run_game(list_games(corpus)[i], cfg, OutputLayout.at(out), build_pipeline(cfg))


def plain_parallel(corpus: str, out: str) -> float:
    """Seconds for the same plain loop split over 2 processes (one game each): this machine's ceiling."""
    import multiprocessing as mp

    n = len(list_games(corpus))
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_loop_one_game, [(corpus, out, i) for i in range(n)])
    return time.perf_counter() - t0


def flow_run(corpus: str, out: str, workers: int) -> tuple[float, float, int]:
    """(flow body seconds, whole command seconds, frames) of `matchflow run --workers N --force`."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "matchflow.cli", "run", corpus, "--out", out, "--workers", str(workers), "--force"],
        capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - t0
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("run "))
    # "... N frames in S s (R frames/s)"
    words = line.split()
    i = words.index("frames")
    return float(words[i + 2]), wall, int(words[i - 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are medians")
    ap.add_argument("--keep", help="folder to keep the corpus in (reused when present)")
    args = ap.parse_args()
    tmp, base = work_folder(args.keep, "matchflow-bench-")
    corpus = synthesized_corpus(base / "corpus", args.games, args.seconds, seed=1)
    cfg = PipelineConfig(stages=["frames"])
    rounds: list[dict[str, float]] = []
    frames = 0
    for r in range(args.rounds):  # interleaved rounds: each ratio is taken within a round, then the median
        work, frames = plain_loop(str(corpus), str(base / "out-loop"), cfg)
        par = plain_parallel(str(corpus), str(base / "out-par"))
        f1, w1, n1 = flow_run(str(corpus), str(base / "out-1"), 1)
        f2, w2, n2 = flow_run(str(corpus), str(base / "out-2"), 2)
        assert n1 == n2 == frames, (n1, n2, frames)
        rounds.append({"work": work, "par": par, "f1": f1, "w1": w1, "f2": f2, "w2": w2})
        print(f"round {r + 1}: loop {work:.2f} s, 2-process loop {par:.2f} s, flow 1 worker {f1:.2f} s "
              f"(command {w1:.2f}), flow 2 workers {f2:.2f} s (command {w2:.2f})", flush=True)
    med = {k: statistics.median(x[k] for x in rounds) for k in rounds[0]}
    overhead = statistics.median(x["f1"] / x["work"] - 1 for x in rounds)
    speedup = statistics.median(x["f1"] / x["f2"] for x in rounds)
    ceiling = statistics.median(x["work"] / x["par"] for x in rounds)
    cmd = f".venv/bin/python bench/overhead.py --games {args.games} --seconds {args.seconds:g} --rounds {args.rounds}"
    per_round = [
        f"| {i + 1} | {x['work']:.2f} | {x['par']:.2f} | {x['f1']:.2f} | {x['f2']:.2f} | "
        f"{(x['f1'] / x['work'] - 1) * 100:.1f}% | {x['f1'] / x['f2']:.2f}x | {x['work'] / x['par']:.2f}x |"
        for i, x in enumerate(rounds)
    ]
    body = "\n".join([
        *header(cmd),
        f"Corpus: {args.games} games x 2 halves x {args.seconds:g} s, 1280x720 H.264 25 fps (matchflow synth), "
        f"sampled at 2 fps: {frames} frames; default configuration (stages: frames; chunk 256, batch 16).",
        "",
        f"Medians over {len(rounds)} interleaved rounds:",
        "",
        "| run | seconds | frames/s |",
        "| --- | --- | --- |",
        f"| plain single-process loop over the same chunks (the work) | {med['work']:.2f} | {frames / med['work']:.1f} |",
        f"| the same plain loop split over 2 processes, no orchestration (this machine's ceiling) | {med['par']:.2f} | "
        f"{frames / med['par']:.1f} |",
        f"| flow, 1 Dask worker, flow body (startup excluded) | {med['f1']:.2f} | {frames / med['f1']:.1f} |",
        f"| flow, 2 Dask workers, flow body (startup excluded) | {med['f2']:.2f} | {frames / med['f2']:.1f} |",
        f"| `matchflow run --workers 1`, whole command | {med['w1']:.2f} | |",
        f"| `matchflow run --workers 2`, whole command | {med['w2']:.2f} | |",
        "",
        "Each round, seconds (ratios within the round):",
        "",
        "| round | loop | 2-process loop | flow, 1 worker | flow, 2 workers | overhead | speed-up | ceiling |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *per_round,
        "",
        f"Orchestration overhead (flow 1 worker / loop - 1, median of rounds): **{overhead * 100:.1f}%** "
        "(target < 10%).  ",
        f"Speed-up 2 workers over 1 (median of rounds): **{speedup:.2f}x** (target >= 1.7x); 2 plain processes "
        f"over 1 without any orchestration: {ceiling:.2f}x.",
    ])
    publish("Orchestration overhead", body)
    tmp.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    main()

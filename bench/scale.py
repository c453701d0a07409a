"""Scale: per-game orchestration overhead and the flow process's peak memory for corpora of many tiny games.

Synthesizes ONE tiny game (``matchflow synth``: 1 half, ``--seconds`` s, ``--width`` x ``--height``) and replicates
it into N game folders with hard links (a SoccerNet-sized listing: ``league/season/date - teams`` folders), then runs
``run_corpus`` with the ``frames`` stage only on a LocalCluster of ``--workers`` workers, for each N (a fresh
process per N, so that each peak is its own). Per N it reports:

- wall: the whole ``run_corpus`` call (cluster start-up included), and the flow body (``RunSummary.seconds``:
  cluster start-up excluded);
- the work: worker seconds of the chunks (decode + frames + write, summed over chunks) divided by the workers:
  the body's lower bound with perfect parallelism;
- per-game overhead = (body - work) / games;
- peak RSS of the flow process (sampled every 50 ms; the Dask scheduler of the LocalCluster runs in it), and of
  the Prefect API server the run starts (a child process).

Linearity: per-game body time and per-game overhead at the largest N against the smallest.

    .venv/bin/python bench/scale.py [--games 10 100 500] [--workers 2] [--seconds 2.5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import header, publish, work_folder

HERE = Path(__file__).resolve().parent


class PeakRSS:
    """Samples the RSS of this process (and, separately, of its children) in a thread; keeps the peaks."""

    def __init__(self, period: float = 0.05) -> None:
        import psutil

        self.proc = psutil.Process()
        self.period, self.peak, self.peak_children = period, 0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                for child in self.proc.children(recursive=False):
                    try:
                        cmd = " ".join(child.cmdline())
                        kind = "prefect_api" if "uvicorn" in cmd or "prefect" in cmd else "other"
                        if "distributed" in cmd or "multiprocessing" in cmd or "spawn" in cmd:
                            kind = "dask_worker"
                        rss = child.memory_info().rss
                        self.peak_children[kind] = max(self.peak_children.get(kind, 0), rss)
                    except Exception:
                        continue
            except Exception:
                pass
            self._stop.wait(self.period)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def replicate(source_game: Path, corpus: Path, n: int) -> None:
    """N game folders of hard links to the one synthesized game's videos."""
    videos = sorted(p for p in source_game.iterdir() if p.suffix in (".mp4", ".mkv"))
    for i in range(n):
        season = f"{2015 + i // 380}-{2016 + i // 380}"
        game = corpus / "bench-league" / season / f"2026-08-{1 + i % 28:02d} - 18-00 Home {i:04d} 0 - 0 Away {i:04d}"
        game.mkdir(parents=True, exist_ok=True)
        for v in videos:
            target = game / v.name
            if not target.exists():
                os.link(v, target)


def one(corpus: str, out: str, workers: int) -> dict:
    """Run the corpus flow once in this process; returns the figures."""
    from matchflow.config import PipelineConfig
    from matchflow.flows.corpus import run_corpus
    from matchflow.prefect_env import local_api

    cfg = PipelineConfig(workers=workers, stages=["frames"])
    with local_api(), PeakRSS() as rss:
        t0 = time.perf_counter()
        summary = run_corpus(corpus, out, cfg, force=True)
        wall = time.perf_counter() - t0
    work = sum(summary.stage_seconds.values()) / workers
    n = summary.games
    return {
        "games": n, "committed": len(summary.committed), "failed": len(summary.failed), "frames": summary.frames,
        "wall_s": wall, "body_s": summary.seconds, "work_s": work,
        "per_game_s": summary.seconds / n, "overhead_per_game_s": (summary.seconds - work) / n,
        "peak_rss_flow_mib": rss.peak / 2**20,
        "peak_rss_children_mib": {k: v / 2**20 for k, v in rss.peak_children.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", type=int, nargs="+", default=[10, 100, 500])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=2.5)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=180)
    ap.add_argument("--keep", help="folder for the corpora and outputs (kept; reused when present)")
    ap.add_argument("--one", nargs=3, metavar=("CORPUS", "OUT", "JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        corpus, out, dest = args.one
        Path(dest).write_text(json.dumps(one(corpus, out, args.workers)))
        return

    from matchflow.synth import synthesize_corpus

    tmp, base = work_folder(args.keep, "matchflow-scale-")
    seed_dir = base / "seed"
    if not seed_dir.exists():
        synthesize_corpus(seed_dir, games=1, halves=1, seconds=args.seconds, seed=3, width=args.width,
                          height=args.height, workers=1)
    (game,) = [p.parent for p in seed_dir.rglob("1_*.mp4")]
    rows = []
    for n in args.games:
        corpus = base / f"corpus-{n}"
        replicate(game, corpus, n)
        dest = base / f"result-{n}.json"
        print(f"N={n}: running the corpus flow ...", flush=True)
        subprocess.run([sys.executable, __file__, "--workers", str(args.workers), "--one", str(corpus),
                        str(base / f"out-{n}"), str(dest)], check=True)
        r = json.loads(dest.read_text())
        assert r["committed"] == n and r["failed"] == 0, r
        rows.append(r)
        print(json.dumps(r), flush=True)

    lo, hi = rows[0], rows[-1]
    growth = hi["per_game_s"] / lo["per_game_s"]
    marginal = (hi["body_s"] - lo["body_s"]) / max(hi["games"] - lo["games"], 1)  # seconds per added game
    ogrowth = hi["overhead_per_game_s"] / lo["overhead_per_game_s"]
    seed_video = next(game.glob("1_*.mp4"))
    cmd = (f".venv/bin/python bench/scale.py --games {' '.join(map(str, args.games))} --workers {args.workers} "
           f"--seconds {args.seconds:g}")
    table = [
        f"| {r['games']} | {r['frames']} | {r['wall_s']:.1f} | {r['body_s']:.1f} | {r['work_s']:.2f} | "
        f"{r['per_game_s']:.3f} | {r['overhead_per_game_s']:.3f} | {r['peak_rss_flow_mib']:.0f} | "
        f"{r['peak_rss_children_mib'].get('prefect_api', 0):.0f} |"
        for r in rows
    ]
    body = "\n".join([
        *header(cmd),
        f"Corpus: one synthesized game (1 half, {args.seconds:g} s, {args.width}x{args.height} H.264 25 fps, "
        f"`{seed_video.name}`) hard-linked into N game folders; stages: frames; default configuration otherwise "
        f"(2 fps: one chunk per game); LocalCluster of {args.workers} workers; `--force`.",
        "",
        "| games | frames | wall, s (cluster start-up included) | flow body, s | work, s (worker seconds / workers) | "
        "body per game, s | overhead per game, s | peak RSS flow process, MiB | peak RSS Prefect API server, MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *table,
        "",
        f"Overhead per game = (flow body - work) / games. Growth from {lo['games']} to {hi['games']} games: body per "
        f"game x{growth:.2f}, overhead per game x{ogrowth:.2f} (1.0 = linear total time); flow-process peak RSS "
        f"{lo['peak_rss_flow_mib']:.0f} -> {hi['peak_rss_flow_mib']:.0f} MiB. Marginal flow-body time per added game "
        f"({lo['games']} -> {hi['games']}): {marginal:.3f} s. A fixed cost sits in every body: the first chunk on "
        "each fresh worker also pays the worker's first Prefect task and imports (torch for device auto), so the "
        "per-game figures of small N are upper bounds. The flow process holds the Dask scheduler of the "
        "LocalCluster; RSS sampled every 50 ms.",
    ])
    publish("Scale", body)
    if not args.keep:
        tmp.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    main()

"""Start-up of `matchflow run`: seconds from the command to its first frame, and the wall time of a rerun with
nothing to do, as a user runs it (a fresh process each time).

For each round, on a synthesized corpus (``--games`` x 2 halves x ``--seconds`` s, 1280x720):

- first frame: ``matchflow run CORPUS --out OUT --stages frames --workers W`` into a new output root; the first
  chunk's start time on its worker (the manifest's ``chunk_runs``) minus the moment the command was launched;
- no-op rerun: the same command again on the committed output; its whole wall time.

The local Prefect API keeps its database in a slot of the state folder between runs (matchflow.prefect_env); the
first round runs with an empty state folder (the database is created and migrated), later rounds with the kept one.

    .venv/bin/python bench/startup.py [--rounds 3] [--workers 2] [--games 1] [--seconds 4] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from common import header, invocation, load_average, publish, synthesized_corpus, work_folder


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Launch ``cmd``; returns (unix time of the launch, wall seconds, the finished process)."""
    launched = time.time()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return launched, time.perf_counter() - t0, res


def _first_chunk(out: Path) -> float:
    """Unix time the first chunk of the run in ``out`` started on its worker."""
    starts = [datetime.fromisoformat(c["started"]).timestamp()
              for p in (out / "manifests").glob("*.json") for c in json.loads(p.read_text())["chunk_runs"]]
    return min(starts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--games", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--keep", help="work folder to keep (default: a temporary one)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = ap.parse_args()
    tmp, work = work_folder(args.keep, "matchflow-startup-")
    corpus = synthesized_corpus(work / "corpus", args.games, args.seconds, seed=4)
    env = {**os.environ, "MATCHFLOW_STATE_DIR": str(work / "state"), "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    matchflow = str(Path(sys.executable).parent / "matchflow")
    load0 = load_average()
    rows = []
    for r in range(args.rounds):
        out = work / f"out-{r}"
        cmd = [matchflow, "run", str(corpus), "--out", str(out), "--stages", "frames", "--workers", str(args.workers)]
        launched, wall, _ = _run(cmd, env)
        first = _first_chunk(out) - launched
        _, noop, res = _run(cmd, env)
        assert "nothing to run" in res.stderr, res.stderr
        rows.append((first, wall, noop))
        print(f"round {r + 1}: first frame after {first:.1f} s (run {wall:.1f} s); no-op rerun {noop:.1f} s", flush=True)
    load1 = load_average()
    later = rows[1:] or rows
    body = "\n".join([
        *header(invocation(__file__), f"; 1-minute load average {load0:.1f} before and {load1:.1f} after"),
        "",
        f"`matchflow run CORPUS --out OUT --stages frames --workers {args.workers}`, {args.games} game(s) x 2 halves x "
        f"{args.seconds:g} s of 1280x720 video; a fresh process per command.",
        "",
        "| round | Prefect database | first frame (s) | whole run (s) | no-op rerun (s) |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {i + 1} | {'created' if i == 0 else 'kept'} | {f:.1f} | {w:.1f} | {n:.1f} |"
          for i, (f, w, n) in enumerate(rows)],
        "",
        f"Median with the kept database: first frame {statistics.median(r[0] for r in later):.1f} s, no-op rerun "
        f"{statistics.median(r[2] for r in later):.1f} s.",
    ])
    publish("Start-up", body, write=not args.no_write)
    if not args.keep:
        tmp.cleanup()


if __name__ == "__main__":
    main()

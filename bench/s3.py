"""S3 throughput: the same small synthetic corpus processed local -> local and s3 -> s3 (moto on loopback).

Synthesizes a corpus (default 2 games x 2 halves x 15 s, 1280x720 H.264 25 fps), uploads it to a moto S3 server
started in this process on 127.0.0.1 (``moto.server.ThreadedMotoServer``, as tests/conftest.py does; the standard
AWS variables point the flow and its Dask workers at it), then runs the corpus flow with the same configuration
(stages: frames only; 2 workers; default chunk and batch) from the local folder into a local output root, and
from ``s3://bench-corpus/corpus`` into ``s3://bench-out/<run>``, in interleaved rounds. Throughput = sampled
frames / flow body seconds (``RunSummary.seconds``: cluster start-up excluded); ratio = s3 / local within a
round, median over rounds. The moto server runs in the flow's process and shares the 2 cores with the workers.

    .venv/bin/python bench/s3.py [--games 2] [--seconds 15] [--rounds 3] [--workers 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from common import header, publish, synthesized_corpus, work_folder

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", help="folder for the local corpus and outputs (the corpus is reused when present)")
    args = ap.parse_args()

    import s3fs

    from matchflow.config import PipelineConfig
    from matchflow.flows.corpus import run_corpus
    from matchflow.prefect_env import local_api
    from matchflow.storage.local_s3 import loopback_s3_env

    tmp, base = work_folder(args.keep, "matchflow-s3-bench-")
    corpus = synthesized_corpus(base / "corpus", args.games, args.seconds, seed=11)
    videos = sorted(p for p in corpus.rglob("*.mp4"))
    size = sum(p.stat().st_size for p in videos)

    with loopback_s3_env():
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench-corpus")
        fs.mkdir("bench-out")
        t0 = time.perf_counter()
        for p in videos:
            fs.put_file(str(p), f"bench-corpus/corpus/{p.relative_to(corpus).as_posix()}")
        upload = time.perf_counter() - t0
        cfg = PipelineConfig(workers=args.workers, stages=["frames"])
        rounds = []
        with local_api():
            for r in range(args.rounds):
                loc = run_corpus(str(corpus), str(base / f"out-local-{r}"), cfg, force=True)
                s3 = run_corpus("s3://bench-corpus/corpus", f"s3://bench-out/run-{r}", cfg, force=True)
                assert not loc.failed and not s3.failed, (loc.failed, s3.failed)
                assert loc.frames == s3.frames and len(s3.committed) == args.games
                row = {"frames": loc.frames, "local_s": loc.seconds, "s3_s": s3.seconds,
                       "local_fps": loc.frames_per_second, "s3_fps": s3.frames_per_second,
                       "ratio": s3.frames_per_second / loc.frames_per_second}
                rounds.append(row)
                print(f"round {r + 1}: local {row['local_fps']:.1f} frames/s ({loc.seconds:.1f} s), "
                      f"s3 {row['s3_fps']:.1f} frames/s ({s3.seconds:.1f} s), ratio {row['ratio']:.2f}", flush=True)
        fs.invalidate_cache()
        written = fs.du("bench-out/run-0", total=True)

    med = {k: statistics.median(x[k] for x in rounds) for k in ("local_s", "s3_s", "local_fps", "s3_fps", "ratio")}
    frames = rounds[0]["frames"]
    cmd = (f".venv/bin/python bench/s3.py --games {args.games} --seconds {args.seconds:g} --rounds {args.rounds} "
           f"--workers {args.workers}")
    body = "\n".join([
        *header(cmd),
        f"Corpus: {args.games} games x 2 halves x {args.seconds:g} s, 1280x720 H.264 25 fps (matchflow synth), "
        f"{size / 2**20:.1f} MiB of video, sampled at 2 fps: {frames} frames. Same configuration both ways: stages "
        f"frames only, {args.workers} workers, chunk 256, batch 16. S3: a moto server (`ThreadedMotoServer`) on "
        f"127.0.0.1 in the flow's process; upload of the corpus took {upload:.1f} s; one s3 output root holds "
        f"{written / 2**20:.2f} MiB.",
        "",
        "| round | local -> local, s | frames/s | s3 -> s3, s | frames/s | s3 / local |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {i + 1} | {x['local_s']:.2f} | {x['local_fps']:.1f} | {x['s3_s']:.2f} | {x['s3_fps']:.1f} | "
          f"{x['ratio']:.2f} |" for i, x in enumerate(rounds)],
        f"| median | {med['local_s']:.2f} | {med['local_fps']:.1f} | {med['s3_s']:.2f} | {med['s3_fps']:.1f} | "
        f"**{med['ratio']:.2f}** |",
        "",
        "Flow body seconds (cluster start-up excluded). s3 -> s3 reads every video through s3fs (decord on a file "
        "object) and writes Parquet parts, Zarr groups, locks and manifests to S3; moto shares the cores.",
    ])
    publish("S3 throughput", body)
    if not args.keep:
        tmp.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    main()

"""Start a Dask cluster of SLURM jobs for `matchflow run --cluster tcp://HOST:PORT` (dask-jobqueue).

Run on the login node, from the repository root, in the project's environment with `pip install dask-jobqueue`:

    DASK_CONFIG=deploy/jobqueue python deploy/jobqueue/slurm_cluster.py --jobs 8

It prints the scheduler's address and keeps the cluster up until Ctrl-C; in another shell:

    matchflow run /data/SoccerNet --out /data/matchflow-out --cluster tcp://LOGIN-NODE:8786 \
        --config my-run.yaml              # e.g. stages: [frames, calibration, detection]

Settings (queue, memory, GPUs, worker arguments) come from deploy/jobqueue/jobqueue.yaml; the ones the flow
relies on are repeated here so that the script works without it. A chunk whose worker dies (a restart above its
memory limit, a job past its walltime) is tried ``--allowed-failures`` more times, then its game fails.
"""

from __future__ import annotations

import argparse
import time

import dask
from dask_jobqueue import SLURMCluster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4, help="SLURM jobs, one GPU worker each (default 4)")
    ap.add_argument("--adapt", type=int, metavar="MAX", help="scale between 1 and MAX jobs with the load instead")
    ap.add_argument("--allowed-failures", type=int, default=2)
    args = ap.parse_args()
    # waiting chunks stay on the scheduler, not in the queue of a worker that may die (flows/cluster.py)
    dask.config.set({"distributed.scheduler.allowed-failures": args.allowed_failures,
                     "distributed.scheduler.worker-saturation": 1.0})
    cluster = SLURMCluster(
        cores=1,
        processes=1,
        memory=dask.config.get("jobqueue.slurm.memory", "32GiB"),
        job_extra_directives=["--gres=gpu:1"],
        worker_extra_args=["--resources GPU=1", "--preload matchflow.tasks.game"],
        scheduler_options={"port": 8786, "dashboard_address": ":8787"},
    )
    if args.adapt:
        cluster.adapt(minimum_jobs=1, maximum_jobs=args.adapt)
    else:
        cluster.scale(jobs=args.jobs)
    print(f"scheduler at {cluster.scheduler_address}: matchflow run CORPUS --out OUT --cluster "
          f"{cluster.scheduler_address}", flush=True)
    print(cluster.job_script(), flush=True)
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()

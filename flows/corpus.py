"""The corpus flow: list the games, fan out per game and per chunk over Dask, commit each game.

The flow process only schedules (flows/scheduler.py): frames are decoded and processed on the workers, which
write their outputs themselves; tasks return small metadata. A game whose chunk fails (after retries) is
recorded as failed with its errors; the other games go on. The run publishes Prefect artifacts: a progress bar
updated as games finish and a markdown report at the end (flows/report.py). The cluster, its resources and its
faults: flows/cluster.py.

Faults. A chunk that raises is re-run by Prefect up to ``retries`` times (1 s apart); a chunk whose worker
process dies is re-run by the Dask scheduler (flows/cluster.py). Rewriting a chunk replaces its files, so a
re-run adds no rows. S3 requests are retried in the storage layer (see storage/fs.py).

Deployments use this module as their entrypoint, ``matchflow.flows.corpus:process_corpus`` (deploy/prefect.yaml).
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect_dask import DaskTaskRunner

from matchflow.config import PipelineConfig
from matchflow.flows.cluster import ClusterError, check_cluster, current_task_runner, dask_task_runner
from matchflow.flows.scheduler import CorpusRun
from matchflow.flows.summary import RunSummary

__all__ = ["process_corpus", "run_corpus", "RunSummary", "ClusterError", "check_cluster"]

SECRET_HINTS = ("key", "secret", "token", "password", "credential")


@flow(name="process-corpus", persist_result=False)
def process_corpus(corpus: str, out: str, config: dict[str, Any] | None = None, force: bool = False) -> dict[str, Any]:
    """Process every game of ``corpus`` into the output root ``out`` (local folder or s3:// prefix).

    ``config`` holds PipelineConfig fields; credentials never go here (they come from the environment).
    Committed games whose configuration fingerprint matches are skipped unless ``force``.
    Without a DaskTaskRunner (a deployment run) the work goes to a subflow on ``dask_task_runner`` of
    the configuration. Returns the run summary as a dict.
    """
    for k in (config or {}).get("storage_options", {}) or {}:
        if any(h in k.lower() for h in SECRET_HINTS):
            raise ValueError(
                f"storage_options.{k} looks like a credential: pass credentials through the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) so they never reach flow parameters"
            )
    cfg = PipelineConfig.model_validate(config or {})
    if not isinstance(current_task_runner(), DaskTaskRunner):
        # Started without a Dask runner (a deployment run, a plain call): run as a subflow on the cluster
        # the configuration asks for, as `matchflow run` does. The subflow is the importable module's flow,
        # so Dask workers can unpickle it however this file was loaded (a deployment loads it by path).
        from matchflow.flows import corpus as module

        on_dask = module.process_corpus.with_options(task_runner=dask_task_runner(cfg))  # type: ignore[arg-type]  # Prefect types task runners by their future type
        return on_dask(corpus=corpus, out=out, config=config, force=force)
    return CorpusRun(corpus, out, cfg, force).run().as_dict()


def run_corpus(corpus: str, out: str, config: PipelineConfig, force: bool = False) -> RunSummary:
    """Run the corpus flow on the Dask cluster ``config`` asks for; returns the summary.

    The Prefect API must be reachable (see matchflow.prefect_env.local_api for a local one).
    """
    runner = dask_task_runner(config)
    f = process_corpus.with_options(task_runner=runner)  # type: ignore[arg-type]  # Prefect types task runners by their future type
    data = f(corpus=corpus, out=out, config=config.model_dump(mode="json"), force=force)
    return RunSummary.from_dict(data)

"""The Dask cluster of a corpus run: which cluster a configuration asks for, starting it, the resources tasks ask
for, and what a task's failure says when its worker died.

Clusters (``cluster`` in the configuration, ``--cluster`` of ``matchflow run``): ``local`` (the default), a
``distributed.LocalCluster`` of one single-threaded worker process per core; ``cuda``, a dask-cuda
``LocalCUDACluster`` of one worker per GPU, each declaring the Dask resource ``GPU: 1`` (checked before any
work: dask-cuda installed, a GPU visible); or ``tcp://HOST:PORT``, an existing scheduler (``scheduler`` is an alias).
When the pipeline has a GPU stage (``Stage.uses_gpu``) and the run targets GPUs (cluster ``cuda``, or device
``cuda``/``auto`` on a cluster whose workers declare ``GPU``, or ``gpu_resource: true``), every chunk task asks
for the resource ``GPU: 1``, so it runs only on such workers; external GPU workers are started with
``dask worker tcp://HOST:PORT --resources GPU=1``.

Faults. A chunk whose worker process dies is re-run on another worker by the Dask scheduler, ``retries`` times on
the clusters the run starts (``distributed.scheduler.allowed-failures`` is set to ``retries``; an external
scheduler uses its own setting, 3 by default); then the game fails with ``KilledWorker``.

Memory. Each worker of a cluster the run starts has a memory limit (``memory_limit``; ``auto``: the machine's
memory divided by the workers). Its nanny restarts a worker whose process goes above 95% of it
(``distributed.worker.memory.terminate``), so a runaway chunk costs a worker restart, not a swapping machine:
the chunk is tried again on a fresh worker, and after ``retries`` restarts its game fails with an error saying
that the worker exceeded its memory limit (the other games go on). Dask counts every task assigned to a dying
worker, also one only waiting in its queue, as having died with it; so the clusters the run starts keep waiting
chunks on the scheduler (``distributed.scheduler.worker-saturation`` 1.0: a worker holds only the chunk it runs)
and a chunk does not wait behind a runaway one. Dask queues that way only large task groups (more tasks than
twice the workers' threads); in a run of a few chunks one can still wait in a worker's queue and fail with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from typing import Any, cast

import dask
from prefect_dask import DaskTaskRunner

from matchflow.config import GPU_RESOURCE, PipelineConfig


class ClusterError(ValueError):
    """The Dask cluster the configuration asks for cannot be had; the message says what is missing."""


#: The module every worker imports at start (``--preload``): the pipeline, not on the first task.
WORKER_PRELOAD = "matchflow.tasks.game"


def check_cluster(config: PipelineConfig) -> None:
    """Fail before any work when the cluster cannot start: ``cuda`` needs dask-cuda and a visible GPU."""
    if config.cluster_kind != "cuda":
        return
    try:
        import dask_cuda  # noqa: F401
    except ImportError as exc:
        raise ClusterError(
            f"--cluster cuda needs the package dask-cuda, which cannot be imported ({exc}); install it with "
            "`pip install -e '.[gpu]'` (dask-cuda[cu13]) on a machine with NVIDIA GPUs"
        ) from None
    gpus = _visible_gpus()
    if gpus == 0:
        raise ClusterError(
            "--cluster cuda needs an NVIDIA GPU, but none is visible on this machine "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}); use --cluster local"
        )


def _visible_gpus() -> int:
    """CUDA devices this process can see (0 without a driver)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # a broken CUDA install counts as no GPU
        return 0


class _DaskRunner(DaskTaskRunner):
    """prefect-dask's runner, except that:

    - each submission serializes Prefect's settings once per run, not once per task (see
      :func:`_settings_serialized_once`);
    - a cluster slow to shut down after the work is done (a worker process that does not stop within Dask's
      close timeout on a loaded machine) is logged, not raised: every game is already committed or failed by
      then, and raising would fail a complete run."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        memo = self.__dict__.setdefault("_settings_memo", {})
        with _settings_serialized_once(memo):
            return super().submit(*args, **kwargs)

    def __exit__(self, *args: Any) -> None:
        try:
            self._exit_stack.__exit__(*args)
        except TimeoutError as exc:  # asyncio's and distributed's timeouts are TimeoutError
            if args[0] is not None:
                raise
            logging.getLogger(__name__).warning("the Dask cluster did not close in time (%s); the run is complete", exc)
        finally:
            super(DaskTaskRunner, self).__exit__(*args)


def dask_task_runner(config: PipelineConfig) -> DaskTaskRunner:
    """A DaskTaskRunner for the cluster of ``config``: an existing scheduler's address, a LocalCluster of one
    single-threaded process per worker, or a LocalCUDACluster of one worker per GPU (resource ``GPU: 1``)."""
    address = config.scheduler_address
    if address:
        return _DaskRunner(address=address)
    kwargs: dict[str, Any] = {
        "threads_per_worker": 1,
        "memory_limit": config.memory_limit,
        "dashboard_address": None,
        "preload": [WORKER_PRELOAD],  # workers import the pipeline at start, not on their first task
    }
    if config.cluster_kind == "cuda":
        check_cluster(config)
        if config.workers:
            kwargs["n_workers"] = config.workers  # at most one per visible GPU
        kwargs["resources"] = {GPU_RESOURCE: 1}
        return _DaskRunner(cluster_class="dask_cuda.LocalCUDACluster", cluster_kwargs=kwargs)
    kwargs.update(n_workers=config.workers or os.cpu_count() or 1, processes=True)
    return _DaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=kwargs)


def chunk_resources(config: PipelineConfig, pipeline: Any, worker_resources: list[dict[str, float]]) -> dict[str, float]:
    """The Dask resources each chunk task asks for: ``{"GPU": 1}`` when the pipeline has a GPU stage and the run
    targets GPUs (see the module docstring), else none. ``worker_resources``: the resources each worker of the
    cluster declares. Raises ClusterError when GPU routing is asked for but no worker declares ``GPU``."""
    has_gpu_stage = any(getattr(st, "uses_gpu", False) for st in pipeline.stages)
    gpu_workers = sum(1 for r in worker_resources if (r or {}).get(GPU_RESOURCE, 0) >= 1)
    if config.gpu_resource is not None:
        route = config.gpu_resource and has_gpu_stage
    else:
        route = has_gpu_stage and (
            config.cluster_kind == "cuda" or (config.device in ("cuda", "auto") and gpu_workers > 0)
        )
    if not route:
        return {}
    if gpu_workers == 0:
        names = [st.name for st in pipeline.stages if getattr(st, "uses_gpu", False)]
        raise ClusterError(
            f"stage(s) {names} run on GPU workers, but no worker of the cluster declares the Dask resource "
            f"{GPU_RESOURCE!r}: start them with `dask worker SCHEDULER --resources {GPU_RESOURCE}=1` "
            "(LocalCUDACluster workers declare it), or set gpu_resource: false"
        )
    return {GPU_RESOURCE: 1}


def error_text(exc: BaseException) -> str:
    """A failure as one line: the exception's type and message."""
    return f"{type(exc).__name__}: {exc}"


def current_task_runner() -> Any:
    """The task runner of the flow run in progress, or None outside a flow run."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return getattr(ctx, "task_runner", None) if ctx else None


#: Seconds a cluster the run starts waits for a restarted worker to come back before giving up on it.
LOST_WORKER_TIMEOUT_S = 120


#: Tasks a worker of a cluster the run starts may hold per thread: 1.0, none waits in a worker's queue.
WORKER_SATURATION = 1.0


def scheduler_settings(cfg: PipelineConfig) -> dict[str, Any]:
    """The Dask configuration of the scheduler of a cluster the run starts (see the module docstring)."""
    return {"distributed.scheduler.allowed-failures": cfg.retries,
            "distributed.scheduler.worker-saturation": WORKER_SATURATION}


def start_cluster(cfg: PipelineConfig) -> list[dict[str, float]]:
    """Bring up the flow's Dask cluster now: prefect-dask starts it on the first task submission otherwise,
    which would count the cluster's start-up in the first task's latency and in the run's timing.

    A cluster the run starts gets ``allowed-failures = retries``: a chunk whose worker dies (killed, or
    restarted by its nanny above its memory limit) is tried ``retries`` more times; and waiting chunks stay on
    its scheduler (:data:`WORKER_SATURATION`). Returns the resources each worker declares."""
    runner = current_task_runner()
    if not isinstance(runner, DaskTaskRunner):
        return []
    if cfg.cluster_kind != "address":
        # The cluster object (in this process) closes a worker's nanny for good when its restarted process has
        # not come back within this timeout (15 s by default): a worker restarted above its memory limit on a busy
        # machine (its preload imports torch and Prefect) can take longer, and the cluster would shrink.
        timeout = dask.config.get("distributed.deploy.lost-worker-timeout")
        if dask.utils.parse_timedelta(timeout) < LOST_WORKER_TIMEOUT_S:
            dask.config.set({"distributed.deploy.lost-worker-timeout": f"{LOST_WORKER_TIMEOUT_S}s"})
    with dask.config.set(scheduler_settings(cfg)):
        client = runner.client  # the property creates the cluster and connects to it
    try:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
    except TypeError:  # older distributed: no n_workers argument
        workers = client.scheduler_info().get("workers", {})
    return [dict(w.get("resources") or {}) for w in workers.values()]


def _memory_events() -> dict[str, dict[str, Any]]:
    """The workers restarted by their nanny for exceeding their memory limit, by address (scheduler events)."""
    runner = current_task_runner()
    try:
        events = runner.client.get_events("worker-restart-memory")
    except Exception:
        return {}
    return {msg["worker"]: msg for _, msg in events if isinstance(msg, dict) and "worker" in msg}


def task_error(exc: BaseException, cfg: PipelineConfig) -> str:
    """The error of a failed task, saying so when its workers were restarted for exceeding their memory limit."""
    text = error_text(exc)
    if type(exc).__name__ != "KilledWorker":
        return text
    last = getattr(getattr(exc, "last_worker", None), "address", None)
    if last is None:
        m = re.search(r"was (\S+?)\.? Inspecting", str(exc))
        last = m.group(1) if m else None
    mem = _memory_events()
    if last not in mem and mem:
        return (f"the chunk's workers died while running it; {len(mem)} worker(s) of the cluster exceeded their "
                f"memory limit (memory_limit {cfg.memory_limit}) and were restarted during the run ({text})")
    if last in mem:
        rss = cast(int, mem[last].get("rss"))  # distributed sets "rss" in every worker-restart-memory event
        return (
            f"the worker exceeded its memory limit (memory_limit {cfg.memory_limit}): worker {last} reached "
            f"{rss / 2**20:.0f} MiB, above 95% of its limit, and was restarted by its nanny; the chunk was tried "
            f"{getattr(exc, 'allowed_failures', cfg.retries) + 1} time(s), and each time its worker died. Lower batch_frames or "
            f"chunk_frames, or raise memory_limit. ({text})"
        )
    return f"the chunk's workers died while running it ({text})"


def release(fut: Any) -> None:
    """Drop the flow's hold on a finished task's Dask result once it has been read.

    Dask recomputes a lost result that a client still holds: a worker lost later would otherwise make
    Dask run ``prepare-game`` again, which clears the game's output under its running or finished chunks.
    """
    release = getattr(getattr(fut, "wrapped_future", None), "release", None)
    if callable(release):
        release()


@contextlib.contextmanager
def _settings_serialized_once(memo: dict[tuple[int, bool], tuple[Any, dict[str, Any]]]) -> Iterator[None]:
    """Serialize Prefect's settings once per settings object instead of once per task submission.

    prefect-dask ships the caller's context with every task (``prefect.context.serialize_context``); most of that
    is ``SettingsContext.serialize``, a full dump of Prefect's settings model: about 0.2-0.5 s of the flow
    process's CPU per submission on a 2-core machine, 2 submissions per game, which made the flow process the
    bottleneck of corpora of many short games (bench/scale.py). The settings of a run do not change while it
    runs, so the dump is memoized in ``memo`` (the runner's, kept for the run) per settings object and per
    ``include_secrets``, while a task is submitted (the memo holds the settings object: its id cannot be reused).
    """
    from prefect.context import SettingsContext

    original = SettingsContext.serialize

    def serialize(self: Any, include_secrets: bool = True) -> dict[str, Any]:
        key = (id(self.settings), include_secrets)
        hit = memo.get(key)
        if hit is None or hit[0] is not self.settings:  # the settings object is kept: its id cannot be reused
            hit = memo[key] = (self.settings, original(self, include_secrets=include_secrets))
        return hit[1]

    SettingsContext.serialize = serialize  # type: ignore[method-assign]
    try:
        yield
    finally:
        SettingsContext.serialize = original  # type: ignore[method-assign]

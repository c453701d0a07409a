"""The corpus flow: list the games, fan out per game and per chunk over Dask, commit each game.

The flow process only schedules: frames are decoded and processed on the workers, which write their
outputs themselves; tasks return small metadata. A game whose chunk fails (after retries) is recorded
as failed with its errors; the other games go on. The run publishes Prefect artifacts: a progress bar
updated as games finish and a markdown report at the end (see flows/report.py).

Clusters (``cluster`` in the configuration, ``--cluster`` of ``matchflow run``): ``local`` (the default), a
``distributed.LocalCluster`` of one single-threaded worker process per core; ``cuda``, a dask-cuda
``LocalCUDACluster`` of one worker per GPU, each declaring the Dask resource ``GPU: 1`` (checked before any
work: dask-cuda installed, a GPU visible); or ``tcp://HOST:PORT``, an existing scheduler (``scheduler`` is an alias).
When the pipeline has a GPU stage (``Stage.uses_gpu``) and the run targets GPUs (cluster ``cuda``, or device
``cuda``/``auto`` on a cluster whose workers declare ``GPU``, or ``gpu_resource: true``), every chunk task asks
for the resource ``GPU: 1``, so it runs only on such workers; external GPU workers are started with
``dask worker tcp://HOST:PORT --resources GPU=1``.

Faults. A chunk that raises is re-run by Prefect up to ``retries`` times (1 s apart); a chunk whose worker
process dies is re-run on another worker by the Dask scheduler, ``retries`` times too on the clusters the run
starts (``distributed.scheduler.allowed-failures`` is set to ``retries``; an external scheduler uses its own
setting, 3 by default); then the game fails with ``KilledWorker``. Rewriting a chunk replaces its files, so a
re-run adds no rows. S3 requests are retried in the storage layer (see storage/fs.py).

Memory. Each worker of a cluster the run starts has a memory limit (``memory_limit``; ``auto``: the machine's
memory divided by the workers). Its nanny restarts a worker whose process goes above 95% of it
(``distributed.worker.memory.terminate``), so a runaway chunk costs a worker restart, not a swapping machine:
the chunk is tried again on a fresh worker, and after ``retries`` restarts its game fails with an error saying
that the worker exceeded its memory limit (the other games go on). Dask counts every task assigned to a dying
worker, also one only waiting in its queue, as having died with it; so the clusters the run starts keep waiting
chunks on the scheduler (``distributed.scheduler.worker-saturation`` 1.0: a worker holds only the chunk it runs)
and a chunk does not wait behind a runaway one. Dask queues that way only large task groups (more tasks than
twice the workers' threads); in a run of a few chunks one can still wait in a worker's queue and fail with it.

Concurrent runs on one output root. Each game is processed under a per-game lock (storage/lock.py): the
run that takes a game's lock first processes it; another run meanwhile works on the other games, then
waits for the lock, reads the game's manifest again and skips it once the first run has committed it (or
redoes it when that run failed it). Each game is thus processed and committed once, and both runs end
with every game committed; each exits as it would alone (0, or 1 when a game failed). A game whose lock
cannot be taken (the storage refuses the write) fails without any write to its output.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import dask
from prefect import flow, get_run_logger
from prefect_dask import DaskTaskRunner

from matchflow.config import GPU_RESOURCE, PipelineConfig
from matchflow.flows.report import RunArtifacts
from matchflow.games import GamePlan, commit_game, fail_game, needs_run
from matchflow.pipeline import ChunkResult, build_pipeline
from matchflow.storage.corpus import Game, list_games
from matchflow.storage.layout import OutputLayout
from matchflow.storage.lock import POLL_S as LOCK_POLL_S
from matchflow.storage.lock import GameLocks
from matchflow.tasks.game import prepare_game_task, process_chunk_task

progress_log = logging.getLogger("matchflow.progress")

SECRET_HINTS = ("key", "secret", "token", "password", "credential")


@dataclass
class RunSummary:
    """What a corpus run did; ``failed`` maps game keys to their errors."""

    run_id: str
    games: int = 0
    skipped: list[str] = field(default_factory=list)
    committed: list[str] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    frames: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "games": self.games,
            "skipped": self.skipped,
            "committed": self.committed,
            "failed": self.failed,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.frames_per_second, 2),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


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
    """prefect-dask's runner, except that a cluster slow to shut down after the work is done (a worker process
    that does not stop within Dask's close timeout on a loaded machine) is logged, not raised: every game is
    already committed or failed by then, and raising would fail a complete run."""

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


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass
class _GameState:
    game: Game
    plan: GamePlan | None = None
    pending: int = 0
    results: list[ChunkResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started_at: str | None = None


class _Progress:
    """Progress lines on the ``matchflow.progress`` logger: games done and failed, frames per second."""

    def __init__(self, total: int, t0: float) -> None:
        self.total, self.t0, self.done, self.failed, self.frames, self._last = total, t0, 0, 0, 0, 0.0

    def line(self, force: bool = False, note: str = "") -> None:
        now = time.perf_counter()
        if not force and now - self._last < 2.0:
            return
        self._last = now
        rate = self.frames / max(now - self.t0, 1e-9)
        progress_log.info(
            "games %d/%d done, %d failed | %d frames | %.1f frames/s%s",
            self.done, self.total, self.failed, self.frames, rate, f" | {note}" if note else "",
        )


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
    if not isinstance(_current_task_runner(), DaskTaskRunner):
        # Started without a Dask runner (a deployment run, a plain call): run as a subflow on the cluster
        # the configuration asks for, as `matchflow run` does. The subflow is the importable module's flow,
        # so Dask workers can unpickle it however this file was loaded (a deployment loads it by path).
        from matchflow.flows import corpus as module

        on_dask = module.process_corpus.with_options(task_runner=dask_task_runner(cfg))
        return on_dask(corpus=corpus, out=out, config=config, force=force)
    return run_games(corpus, out, cfg, force).as_dict()


def _current_task_runner() -> Any:
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


def _start_cluster(cfg: PipelineConfig) -> list[dict[str, float]]:
    """Bring up the flow's Dask cluster now: prefect-dask starts it on the first task submission otherwise,
    which would count the cluster's start-up in the first task's latency and in the run's timing.

    A cluster the run starts gets ``allowed-failures = retries``: a chunk whose worker dies (killed, or
    restarted by its nanny above its memory limit) is tried ``retries`` more times; and waiting chunks stay on
    its scheduler (:data:`WORKER_SATURATION`). Returns the resources each worker declares."""
    runner = _current_task_runner()
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
    runner = _current_task_runner()
    try:
        events = runner.client.get_events("worker-restart-memory")
    except Exception:
        return {}
    return {msg["worker"]: msg for _, msg in events if isinstance(msg, dict) and "worker" in msg}


def _task_error(exc: BaseException, cfg: PipelineConfig) -> str:
    """The error of a failed task, saying so when its workers were restarted for exceeding their memory limit."""
    text = _error_text(exc)
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
        rss = mem[last].get("rss")
        return (
            f"the worker exceeded its memory limit (memory_limit {cfg.memory_limit}): worker {last} reached "
            f"{rss / 2**20:.0f} MiB, above 95% of its limit, and was restarted by its nanny; the chunk was tried "
            f"{getattr(exc, 'allowed_failures', cfg.retries) + 1} time(s), and each time its worker died. Lower batch_frames or "
            f"chunk_frames, or raise memory_limit. ({text})"
        )
    return f"the chunk's workers died while running it ({text})"


def run_games(corpus: str, out: str, cfg: PipelineConfig, force: bool) -> RunSummary:
    """The body of the corpus flow (inside a flow run with a Dask task runner)."""
    logger = get_run_logger()
    pipeline = build_pipeline(cfg)  # checks the chain of stages before any work
    started = time.perf_counter()
    resources = chunk_resources(cfg, pipeline, _start_cluster(cfg))  # fails before any work
    logger.info("Dask cluster ready in %.1f s%s", time.perf_counter() - started,
                f"; chunk tasks ask for {resources}" if resources else "")
    annotate = functools.partial(dask.annotate, resources=resources) if resources else contextlib.nullcontext
    t0 = time.perf_counter()  # the run's timing excludes the cluster's start-up
    layout = OutputLayout.at(out)
    summary = RunSummary(run_id=str(uuid.uuid4()))
    games = list_games(corpus, cfg.storage_options, cfg.resolution)
    summary.games = len(games)
    todo: list[Game] = []
    for g in games:
        (todo.append(g) if needs_run(layout, g, cfg, force) else summary.skipped.append(g.key))
    logger.info("%d games in %s: %d to process, %d up to date", len(games), corpus, len(todo), len(summary.skipped))
    progress = _Progress(len(todo), t0)
    progress_log.info("%d games: %d to process, %d already committed", len(games), len(todo), len(summary.skipped))
    artifacts = RunArtifacts(out, logger)
    artifacts.start(len(todo))

    events: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    states: dict[str, _GameState] = {g.game_id: _GameState(g) for g in todo}

    def failed(st: _GameState) -> None:
        summary.failed[st.game.key] = st.errors
        progress.failed += 1
        logger.error("game %s failed: %s", st.game.key, "; ".join(st.errors))
        progress.line(force=True, note=f"FAILED {st.game.key}: {st.errors[0]}")
        artifacts.game_finished()

    def finish(st: _GameState) -> None:
        """Commit or fail a game whose tasks are over (only while this run holds its lock), then unlock it."""
        try:
            lost = _lock_lost(locks, st.game.game_id)
            if lost:  # another run took the game over: it writes the manifest, not this one
                st.errors.append(lost)
            elif st.errors:
                try:
                    fail_game(st.game, st.errors, cfg, layout, pipeline, summary.run_id,
                              st.plan.started_at if st.plan else None)
                except Exception as exc:  # the failure cannot be recorded either: the game stays invisible
                    st.errors.append(f"its failed manifest could not be written: {_error_text(exc)}")
            else:
                try:
                    commit_game(st.plan, st.results, cfg, layout, pipeline, summary.run_id)
                except Exception as exc:  # a commit that cannot be written fails the game, not the run
                    st.errors.append(_error_text(exc))
                    try:
                        fail_game(st.game, st.errors, cfg, layout, pipeline, summary.run_id, st.plan.started_at)
                    except Exception as exc2:
                        st.errors.append(f"its failed manifest could not be written: {_error_text(exc2)}")
            if st.errors:
                failed(st)
                return
            summary.committed.append(st.game.key)
            progress.done += 1
            progress.line(force=True, note=f"committed {st.game.key}")
            artifacts.game_finished()
        finally:
            locks.release(st.game.game_id)

    def on_done(kind: str, gid: str) -> Callable[[Any], None]:
        return lambda fut: events.put((kind, gid, fut))

    holders: dict[str, dict[str, Any]] = {}  # game id -> record of the other run holding its lock
    announced = {"at": -1e9, "what": ""}

    def announce(waiting: list[Game]) -> None:
        """A progress line (at most every 30 s, or when it changes) on the games other runs hold."""
        runs = sorted({f"{h.get('run_id')} ({h.get('host')}, pid {h.get('pid')})"
                       for g in waiting for h in [holders.get(g.game_id, {})]})
        what = f"waiting for {len(waiting)} game(s) being processed by run {', '.join(runs)}"
        if what != announced["what"] or time.monotonic() - announced["at"] >= 30:
            progress_log.info("%s", what)
            announced.update(at=time.monotonic(), what=what)

    def start(g: Game) -> str:
        """Lock a game and submit its preparation: ``started``, ``held`` (by another live run) or ``done``."""
        st = states[g.game_id]
        try:
            got, holder = locks.acquire(g.game_id)
        except Exception as exc:  # the lock cannot be written or read: fail the game, touch nothing of it
            st.errors.append(f"cannot lock the game: {_error_text(exc)}")
            failed(st)
            return "done"
        if not got:
            holders[g.game_id] = holder or {}
            return "held"
        try:
            redo = needs_run(layout, g, cfg, force)  # read again under the lock: another run may have committed it
        except Exception as exc:
            st.errors.append(_error_text(exc))
            finish(st)
            return "done"
        if not redo:
            locks.release(g.game_id)
            summary.skipped.append(g.key)
            progress.done += 1
            progress.line(force=True, note=f"{g.key} committed by another run")
            artifacts.game_finished()
            return "done"
        fut = prepare_game_task.submit(g, cfg, layout.root)
        fut.add_done_callback(on_done("prepare", g.game_id))
        return "started"

    def start_each(games: list[Game]) -> tuple[list[Game], int]:
        """Start each of ``games``; returns those another run still holds (announced) and how many are done."""
        held: list[Game] = []
        done = 0
        for g in games:
            outcome = start(g)
            if outcome == "held":
                held.append(g)
            elif outcome == "done":
                done += 1
        if held:
            announce(held)
        return held, done

    with GameLocks(layout.root, summary.run_id, cfg.storage_options) as locks, _settings_serialized_once():
        waiting, done = start_each(todo)
        open_games = len(todo) - done
        next_poll = time.monotonic() + LOCK_POLL_S
        while open_games:
            try:
                timeout = max(0.0, next_poll - time.monotonic()) if waiting else None
                kind, gid, fut = events.get(timeout=timeout)
            except queue.Empty:
                kind, gid, fut = "", "", None
            if waiting and time.monotonic() >= next_poll:  # games another run held: try their locks again
                waiting, done = start_each(waiting)
                open_games -= done
                # a request or two per waiting game and round: poll a long list less often
                next_poll = time.monotonic() + max(LOCK_POLL_S, 0.05 * len(waiting))
            if fut is None:
                continue
            st = states[gid]
            try:
                value = fut.result()
            except BaseException as exc:  # the task failed after its retries, or its worker was lost
                st.errors.append(_task_error(exc, cfg))
                value = None
            _release(fut)
            if kind == "prepare":
                if value is not None:
                    st.plan = value
                    st.pending = len(value.chunks)
                    chunk_task = process_chunk_task.with_options(retries=cfg.retries, retry_delay_seconds=1)
                    with annotate():  # the GPU resource, when the pipeline needs one
                        for spec in value.chunks:
                            cf = chunk_task.submit(spec, cfg, layout.root)
                            cf.add_done_callback(on_done("chunk", gid))
                if st.pending == 0:
                    finish(st)
                    open_games -= 1
                continue
            st.pending -= 1
            if value is not None:
                st.results.append(value)
                progress.frames += value.frames
                summary.frames += value.frames
                for k, s in value.seconds.items():
                    summary.stage_seconds[k] = summary.stage_seconds.get(k, 0.0) + s
            progress.line()
            if st.pending == 0:
                finish(st)
                open_games -= 1
    summary.seconds = time.perf_counter() - t0
    progress.line(force=True, note="run finished")
    logger.info("run %s: %s", summary.run_id, summary.as_dict())
    artifacts.report(summary, corpus)
    return summary


@contextlib.contextmanager
def _settings_serialized_once() -> Any:
    """Serialize Prefect's settings once per run instead of once per task submission.

    prefect-dask ships the caller's context with every task (``prefect.context.serialize_context``); most of that
    is ``SettingsContext.serialize``, a full dump of Prefect's settings model: about 0.2-0.5 s of the flow
    process's CPU per submission on a 2-core machine, 2 submissions per game, which made the flow process the
    bottleneck of corpora of many short games (bench/scale.py). The settings of a run do not change while it
    runs, so the dump is memoized per settings object (and per ``include_secrets``) while the run submits.
    """
    from prefect.context import SettingsContext

    original = SettingsContext.serialize
    memo: dict[tuple[int, bool], tuple[Any, dict[str, Any]]] = {}

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


def _release(fut: Any) -> None:
    """Drop the flow's hold on a finished task's Dask result once it has been read.

    Dask recomputes a lost result that a client still holds: a worker lost later would otherwise make
    Dask run ``prepare-game`` again, which clears the game's output under its running or finished chunks.
    """
    release = getattr(getattr(fut, "wrapped_future", None), "release", None)
    if callable(release):
        release()


def _lock_lost(locks: GameLocks, game_id: str) -> str | None:
    """Why this run lost the lock of a game (None while it holds it, or when the lock cannot be read)."""
    try:
        return locks.lost(game_id)
    except Exception:  # the manifest write that follows reports the storage error
        return None


def run_corpus(corpus: str, out: str, config: PipelineConfig, force: bool = False) -> RunSummary:
    """Run the corpus flow on the Dask cluster ``config`` asks for; returns the summary.

    The Prefect API must be reachable (see matchflow.prefect_env.local_api for a local one).
    """
    runner = dask_task_runner(config)
    f = process_corpus.with_options(task_runner=runner)
    data = f(corpus=corpus, out=out, config=config.model_dump(mode="json"), force=force)
    summary = RunSummary(run_id=data["run_id"], games=data["games"], skipped=data["skipped"],
                         committed=data["committed"], failed=data["failed"], frames=data["frames"],
                         seconds=data["seconds"], stage_seconds=data["stage_seconds"])
    return summary

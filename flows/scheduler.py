"""The scheduling loop of a corpus run: each game through its life cycle, over the Dask task runner of the flow.

A game goes through named states (:class:`Phase`):

``HELD`` (another live run holds its lock; tried again every few seconds) -> ``PREPARING`` (its lock taken, the
``prepare-game`` task probes its videos, removes what uncommitted attempts left and cuts its chunks) -> ``CHUNKS`` (its chunk tasks
run, in parallel over the workers) -> ``HALVES`` (only with game-level stages: once every chunk of a half is
written, one ``process-half`` task runs the half's game-level stages; halves run independently) -> ``DONE``
(committed, or failed with its errors; its lock released).

The loop runs in the flow process and only schedules: tasks report through done-callbacks into one queue,
and the loop reacts to each event in turn, so no state is shared between threads. A game whose task fails
(after its retries) is recorded as failed; the other games go on.

Concurrent runs on one output root. Each game is processed under a per-game lock (storage/lock.py): the run
that takes a game's lock first processes it; another run meanwhile works on the other games, then waits for
the lock, reads the game's manifest again and skips it once the first run has committed it (or redoes it when
that run failed it). Each game is thus processed and committed once, and both runs end with every game
committed; each exits as it would alone (0, or 1 when a game failed). A game whose lock cannot be taken (the
storage refuses the write) fails without any write to its output.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dask
from prefect import get_run_logger

from matchflow.config import PipelineConfig
from matchflow.flows.cluster import chunk_resources, error_text, release, start_cluster, task_error
from matchflow.flows.report import RunArtifacts
from matchflow.flows.summary import RunSummary
from matchflow.game_stages import HalfResult, HalfSpec
from matchflow.games import GamePlan, commit_game, fail_game, needs_run
from matchflow.pipeline import ChunkResult, Pipeline, build_pipeline
from matchflow.storage.corpus import Game, scan_corpus
from matchflow.storage.layout import OutputLayout, write_marker
from matchflow.storage.lock import POLL_S as LOCK_POLL_S
from matchflow.storage.lock import GameLocks
from matchflow.tasks.game import prepare_game_task, process_chunk_task, process_half_task

progress_log = logging.getLogger("matchflow.progress")


class Phase(enum.Enum):
    """Where a game is in its life cycle (see the module docstring)."""

    HELD = "held"
    PREPARING = "preparing"
    CHUNKS = "chunks"
    HALVES = "halves"
    DONE = "done"


@dataclass
class GameRun:
    """One game of the run: its phase, its plan once prepared, what its tasks returned and its errors."""

    game: Game
    phase: Phase = Phase.HELD
    plan: GamePlan | None = None
    pending: int = 0  # tasks of the current phase not yet finished
    chunks_left: dict[int, int] = field(default_factory=dict)  # half -> chunk tasks not yet finished
    results: list[ChunkResult] = field(default_factory=list)
    half_results: list[HalfResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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


class CorpusRun:
    """The body of the corpus flow, inside a flow run with a Dask task runner: :meth:`run` returns the summary."""

    def __init__(self, corpus: str, out: str, cfg: PipelineConfig, force: bool) -> None:
        self.corpus, self.out, self.cfg, self.force = corpus, out, cfg, force
        self.layout = OutputLayout.at(out)
        self.logger = get_run_logger()
        self.summary = RunSummary(run_id=str(uuid.uuid4()))
        self.events: queue.Queue[tuple[str, str, int, Any]] = queue.Queue()
        self.games: dict[str, GameRun] = {}
        self.holders: dict[str, dict[str, Any]] = {}  # game id -> record of the other run holding its lock
        self._announced: tuple[float, str] = (-1e9, "")
        self._marked = False  # contract.json written (see storage/layout.py)
        self.pipeline: Pipeline
        self.annotate: Callable[[], Any] = contextlib.nullcontext

    # --------------------------------------------------------------------------------------------- the run
    def run(self) -> RunSummary:
        cfg, logger = self.cfg, self.logger
        self.pipeline = build_pipeline(cfg)  # checks the chain of stages before any work
        started = time.perf_counter()
        resources = chunk_resources(cfg, self.pipeline, start_cluster(cfg))  # fails before any work
        logger.info("Dask cluster ready in %.1f s%s", time.perf_counter() - started,
                    f"; chunk tasks ask for {resources}" if resources else "")
        if resources:
            self.annotate = functools.partial(dask.annotate, resources=resources)
        t0 = time.perf_counter()  # the run's timing excludes the cluster's start-up
        corpus = scan_corpus(self.corpus, cfg.storage_options, cfg.resolution)
        games = corpus.games
        self.summary.games = len(games)
        self.summary.left_out = dict(corpus.left_out)
        for path, why in corpus.left_out.items():
            logger.warning("corpus folder %s left out: %s", path, why)
        todo: list[Game] = []
        for g in games:
            (todo.append(g) if needs_run(self.layout, g, cfg, self.force) else self.summary.skipped.append(g.key))
        logger.info("%d games in %s: %d to process, %d up to date", len(games), self.corpus, len(todo),
                    len(self.summary.skipped))
        self.progress = _Progress(len(todo), t0)
        progress_log.info("%d games: %d to process, %d already committed", len(games), len(todo),
                          len(self.summary.skipped))
        self.artifacts = RunArtifacts(self.out, logger)
        self.artifacts.start(len(todo))
        self.games = {g.game_id: GameRun(g) for g in todo}
        with GameLocks(self.layout.root, self.summary.run_id, cfg.storage_options) as self.locks:
            self._loop(todo)
        self.summary.seconds = time.perf_counter() - t0
        self.progress.line(force=True, note="run finished")
        logger.info("run %s: %s", self.summary.run_id, self.summary.as_dict())
        self.artifacts.report(self.summary, self.corpus)
        return self.summary

    def _loop(self, todo: list[Game]) -> None:
        held = self._start_each(todo)
        next_poll = time.monotonic() + LOCK_POLL_S
        while any(g.phase is not Phase.DONE for g in self.games.values()):
            try:
                timeout = max(0.0, next_poll - time.monotonic()) if held else None
                event: tuple[str, str, int, Any] | None = self.events.get(timeout=timeout)
            except queue.Empty:
                event = None
            if held and time.monotonic() >= next_poll:  # games another run held: try their locks again
                held = self._start_each(held)
                # a request or two per waiting game and round: poll a long list less often
                next_poll = time.monotonic() + max(LOCK_POLL_S, 0.05 * len(held))
            if event is not None:
                self._on_event(*event)

    # ------------------------------------------------------------------------------------------ starting
    def _start_each(self, games: list[Game]) -> list[Game]:
        """Start each of ``games``; returns those another run still holds (announced)."""
        held = [g for g in games if self._start(self.games[g.game_id]) is Phase.HELD]
        if held:
            self._announce(held)
        return held

    def _start(self, gr: GameRun) -> Phase:
        """Lock a game and submit its preparation; stays ``HELD`` while another live run holds it."""
        g = gr.game
        try:
            got, holder = self.locks.acquire(g.game_id)
        except Exception as exc:  # the lock cannot be written or read: fail the game, touch nothing of it
            gr.errors.append(f"cannot lock the game: {error_text(exc)}")
            self._failed(gr)
            return gr.phase
        if not got:
            self.holders[g.game_id] = holder or {}
            return gr.phase
        if not self._marked:  # the first lock taken: the storage takes writes, mark the output root
            self._marked = True
            try:
                write_marker(self.layout, self.cfg.storage_options)
            except Exception as exc:  # the game's own writes will fail with their errors
                self.logger.warning("cannot mark %s as an output root: %s", self.layout.root, error_text(exc))
        try:
            redo = needs_run(self.layout, g, self.cfg, self.force)  # again under the lock: another run may have committed it
        except Exception as exc:
            gr.errors.append(error_text(exc))
            self._finish(gr)
            return gr.phase
        if not redo:
            self.locks.release(g.game_id)
            gr.phase = Phase.DONE
            self.summary.skipped.append(g.key)
            self.progress.done += 1
            self.progress.line(force=True, note=f"{g.key} committed by another run")
            self.artifacts.game_finished()
            return gr.phase
        gr.phase, gr.pending = Phase.PREPARING, 1
        self._submit(prepare_game_task, "prepare", g.game_id, 0, game=g, config=self.cfg, out=self.layout.root)
        return gr.phase

    def _announce(self, waiting: list[Game]) -> None:
        """A progress line (at most every 30 s, or when it changes) on the games other runs hold."""
        runs = sorted({f"{h.get('run_id')} ({h.get('host')}, pid {h.get('pid')})"
                       for g in waiting for h in [self.holders.get(g.game_id, {})]})
        what = f"waiting for {len(waiting)} game(s) being processed by run {', '.join(runs)}"
        at, last = self._announced
        if what != last or time.monotonic() - at >= 30:
            progress_log.info("%s", what)
            self._announced = (time.monotonic(), what)

    def _submit(self, task: Any, kind: str, game_id: str, half: int, **params: Any) -> None:
        fut = task.submit(**params)
        fut.add_done_callback(lambda f: self.events.put((kind, game_id, half, f)))

    # ------------------------------------------------------------------------------------------- events
    def _on_event(self, kind: str, game_id: str, half: int, fut: Any) -> None:
        gr = self.games[game_id]
        try:
            value = fut.result()
        except BaseException as exc:  # the task failed after its retries, or its worker was lost
            gr.errors.append(task_error(exc, self.cfg))
            value = None
        release(fut)
        gr.pending -= 1
        if kind == "prepare":
            self._on_prepared(gr, value)
        elif kind == "chunk":
            self._on_chunk(gr, half, value)
        else:
            if value is not None:
                gr.half_results.append(value)
                self.summary.add_seconds(value.seconds)
        if gr.pending == 0 and gr.phase is not Phase.DONE:
            self._finish(gr)

    def _on_prepared(self, gr: GameRun, plan: GamePlan | None) -> None:
        if plan is None:
            return
        gr.plan, gr.phase = plan, Phase.CHUNKS
        for spec in plan.chunks:
            gr.chunks_left[spec.half] = gr.chunks_left.get(spec.half, 0) + 1
        chunk_task = process_chunk_task.with_options(retries=self.cfg.retries, retry_delay_seconds=1)
        with self.annotate():  # the GPU resource, when the pipeline needs one
            for spec in plan.chunks:
                gr.pending += 1
                self._submit(chunk_task, "chunk", gr.game.game_id, spec.half, spec=spec, config=self.cfg,
                             out=self.layout.root)

    def _on_chunk(self, gr: GameRun, half: int, result: ChunkResult | None) -> None:
        if result is not None:
            gr.results.append(result)
            self.progress.frames += result.frames
            self.summary.frames += result.frames
            self.summary.add_seconds(result.seconds)
        self.progress.line()
        gr.chunks_left[half] -= 1
        if gr.chunks_left[half] == 0 and not gr.errors and self.pipeline.half_level:
            self._start_half(gr, half)

    def _start_half(self, gr: GameRun, half: int) -> None:
        """Every chunk of ``half`` is written: assemble its row-aligned arrays and run its game-level stages
        (halves of a game independently)."""
        assert gr.plan is not None
        gr.phase = Phase.HALVES
        spec = HalfSpec(gr.game.key, gr.game.game_id, half, gr.plan.videos[half],
                        tuple(c.chunk for c in gr.plan.chunks if c.half == half), gr.plan.version)
        half_task = process_half_task.with_options(retries=self.cfg.retries, retry_delay_seconds=1)
        gr.pending += 1
        with self.annotate():
            self._submit(half_task, "half", gr.game.game_id, half, spec=spec, config=self.cfg, out=self.layout.root)

    # ------------------------------------------------------------------------------------------ finishing
    def _finish(self, gr: GameRun) -> None:
        """Commit or fail a game whose tasks are over (only while this run holds its lock), then unlock it."""
        cfg, layout, pipeline, run_id = self.cfg, self.layout, self.pipeline, self.summary.run_id
        try:
            lost = self._lock_lost(gr.game.game_id)
            if lost:  # another run took the game over: it writes the manifest, not this one
                gr.errors.append(lost)
            elif gr.errors:
                try:
                    fail_game(gr.game, gr.errors, cfg, layout, pipeline, run_id, gr.plan.started_at if gr.plan else None)
                except Exception as exc:  # the failure cannot be recorded either: the game stays invisible
                    gr.errors.append(f"its failed manifest could not be written: {error_text(exc)}")
            else:
                assert gr.plan is not None
                try:
                    commit_game(gr.plan, gr.results, cfg, layout, pipeline, run_id, gr.half_results)
                except Exception as exc:  # a commit that cannot be written fails the game, not the run
                    gr.errors.append(error_text(exc))
                    try:
                        fail_game(gr.game, gr.errors, cfg, layout, pipeline, run_id, gr.plan.started_at)
                    except Exception as exc2:
                        gr.errors.append(f"its failed manifest could not be written: {error_text(exc2)}")
            if gr.errors:
                self._failed(gr)
                return
            gr.phase = Phase.DONE
            self.summary.committed.append(gr.game.key)
            self.progress.done += 1
            self.progress.line(force=True, note=f"committed {gr.game.key}")
            self.artifacts.game_finished()
        finally:
            self.locks.release(gr.game.game_id)

    def _failed(self, gr: GameRun) -> None:
        gr.phase = Phase.DONE
        self.summary.failed[gr.game.key] = gr.errors
        self.progress.failed += 1
        self.logger.error("game %s failed: %s", gr.game.key, "; ".join(gr.errors))
        self.progress.line(force=True, note=f"FAILED {gr.game.key}: {gr.errors[0]}")
        self.artifacts.game_finished()

    def _lock_lost(self, game_id: str) -> str | None:
        """Why this run lost the lock of a game (None while it holds it, or when the lock cannot be read)."""
        try:
            return self.locks.lost(game_id)
        except Exception:  # the manifest write that follows reports the storage error
            return None

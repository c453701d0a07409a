"""The chain of stages and the work of one chunk, as plain functions.

``build_pipeline`` instantiates the configured stages (frame-level and game-level) and checks their chain
before any work starts.
``process_chunk`` decodes one chunk of a half batch by batch, runs every stage on each batch and
writes what they produced (one Parquet file per table, frame-aligned Zarr slices); it returns only
small metadata, never frames.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matchflow.config import PipelineConfig
from matchflow.stages.base import SOURCES, Batch, FrameStage, GameStage, HalfContext, Stage
from matchflow.stages.registry import stage_class
from matchflow.storage import arrays as zarr_io
from matchflow.storage import contract, tables
from matchflow.storage.arrays import ArraySpec
from matchflow.storage.layout import OutputLayout
from matchflow.video import VideoInfo, iter_frames, sample_indices


class PipelineError(ValueError):
    """The configured chain of stages cannot work; the message names the stage and the resource."""


def _check_write(stage: str, key: str) -> None:
    if key.startswith("arrays/"):
        name = key[len("arrays/") :]
        if not any(a.matches(name) for a in contract.ARRAYS):
            raise PipelineError(f"stage {stage!r} writes array {name!r}, which the output contract does not have")
        return
    table, _, column = key.partition(".")
    if table not in contract.TABLES or not column:
        raise PipelineError(f"stage {stage!r} writes {key!r}: not a contract table column (<table>.<column>)")
    if column not in contract.columns(table):
        raise PipelineError(
            f"stage {stage!r} writes {key!r}, but table {table!r} has no such column; "
            f"its columns: {contract.columns(table)}"
        )


def _writer_of(key: str) -> str | None:
    """The built-in stage that writes ``key`` (None when none does)."""
    from matchflow.stages.registry import BUILTIN

    for name, cls in BUILTIN.items():
        if key in tuple(getattr(cls, "writes", ())):
            return name
    return None


@dataclass
class Pipeline:
    """An ordered, checked chain of stages: the frame-level ones run in every chunk, in their order; the
    game-level ones run once per half after its chunks, in their order."""

    stages: list[Stage]

    def __post_init__(self) -> None:
        game_writes = {key: st.name for st in self.game_stages for key in st.writes}
        available = set(SOURCES)
        for st in [*self.frame_stages, *self.game_stages]:
            for key in st.reads:
                if key not in available:
                    if isinstance(st, FrameStage) and key in game_writes:
                        raise PipelineError(
                            f"frame-level stage {st.name!r} reads {key!r}, which game-level stage "
                            f"{game_writes[key]!r} writes; game-level stages run after every frame-level stage"
                        )
                    writer = _writer_of(key)
                    hint = f"; stage {writer!r} writes it: list it before {st.name!r}" if writer else ""
                    raise PipelineError(
                        f"stage {st.name!r} reads {key!r}, which no earlier stage writes "
                        f"(stages in order: {[s.name for s in self.stages]}){hint}"
                    )
            for key in st.writes:
                _check_write(st.name, key)
                if key in available:
                    raise PipelineError(f"stage {st.name!r} writes {key!r}, which an earlier stage already writes")
                available.add(key)
        for st in self.frame_stages:
            for key in st.writes:
                table = contract.array_contract(key[len("arrays/"):]).rows_of if key.startswith("arrays/") else None
                if table is not None and f"{table}.row" not in st.writes:
                    raise PipelineError(f"stage {st.name!r} writes row-aligned array {key[len('arrays/'):]!r}, whose "
                                        f"rows {table}.row points to: it must write {table}.row too")
        frame_tables = set(self._tables(self.frame_stages))
        for st in self.game_stages:
            for key in st.writes:
                table = key.partition(".")[0]
                if key.startswith("arrays/") or (table not in frame_tables and table not in contract.HALF_TABLES):
                    raise PipelineError(
                        f"game-level stage {st.name!r} writes {key!r}: a game-level stage adds columns to the rows "
                        f"of tables that frame-level stages create ({sorted(frame_tables)}) or writes a half table "
                        f"({sorted(contract.HALF_TABLES)})"
                    )
        for st in self.frame_stages:
            for key in st.writes:
                if key.partition(".")[0] in contract.HALF_TABLES:
                    raise PipelineError(f"frame-level stage {st.name!r} writes {key!r}: half tables are written by "
                                        "game-level stages, once per half")

    @property
    def frame_stages(self) -> list[FrameStage]:
        return [st for st in self.stages if isinstance(st, FrameStage)]

    @property
    def game_stages(self) -> list[GameStage]:
        return [st for st in self.stages if isinstance(st, GameStage)]

    @staticmethod
    def _tables(stages: list[FrameStage]) -> list[str]:
        seen: list[str] = []
        for st in stages:
            for key in st.writes:
                t = key.partition(".")[0]
                if not key.startswith("arrays/") and t not in seen:
                    seen.append(t)
        return seen

    @property
    def row_arrays(self) -> dict[str, str]:
        """The row-aligned arrays the frame-level stages write, with the table whose rows they follow."""
        out: dict[str, str] = {}
        for st in self.frame_stages:
            for key in st.writes:
                if key.startswith("arrays/"):
                    table = contract.array_contract(key[len("arrays/"):]).rows_of
                    if table is not None:
                        out[key[len("arrays/"):]] = table
        return out

    @property
    def half_level(self) -> bool:
        """Whether each half needs a step after its chunks: game-level stages, or row-aligned arrays to assemble."""
        return bool(self.game_stages or self.row_arrays)

    @property
    def tables(self) -> list[str]:
        """The contract tables this pipeline writes rows to, in order of first appearance."""
        return self._tables(self.frame_stages)

    def array_specs(self, video: VideoInfo) -> dict[str, ArraySpec]:
        """The frame-aligned arrays of a half of ``video``; each one's dtype is checked against the contract."""
        specs: dict[str, ArraySpec] = {}
        for st in self.frame_stages:
            for name, spec in st.array_specs(video).items():
                expected = contract.array_contract(name).dtype
                if spec.dtype != expected:
                    raise PipelineError(f"stage {st.name!r} declares array {name!r} as {spec.dtype}; the output "
                                        f"contract stores it as {expected}")
                specs[name] = spec
        return specs

    def model_checksums(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for st in self.stages:
            out.update(st.model_checksums())
        return out

    def setup(self, device: str) -> None:
        for st in self.stages:
            st.setup(device)

    @property
    def needs_device(self) -> bool:
        """Whether a stage sets itself up on a device (overrides :meth:`Stage.setup`)."""
        return any(type(st).setup is not Stage.setup for st in self.stages)

    def run(self, batch: Batch, seconds: dict[str, float]) -> None:
        """Run every frame-level stage on ``batch``; adds each stage's wall time to ``seconds[stage name]``."""
        for st in self.frame_stages:
            batch._allowed = frozenset(st.writes)
            batch._stage = st.name
            t0 = time.perf_counter()
            st.process(batch)
            seconds[st.name] = seconds.get(st.name, 0.0) + time.perf_counter() - t0
        batch._allowed, batch._stage = frozenset(), ""


def build_pipeline(config: PipelineConfig) -> Pipeline:
    """Instantiate and check the configured stages (no models are loaded here)."""
    try:
        classes = [stage_class(name) for name in config.stages]
    except KeyError as exc:
        raise PipelineError(str(exc.args[0])) from None
    names = [cls.name for cls in classes]
    unknown = set(config.stage_params) - set(names)
    if unknown:
        raise PipelineError(f"stage_params names stage(s) {sorted(unknown)} that are not in stages {names}")
    return Pipeline([cls(config.stage_params.get(cls.name)) for cls in classes])


_WORKER_PIPELINES: dict[str, Pipeline] = {}


def worker_pipeline(config: PipelineConfig) -> Pipeline:
    """The pipeline of this process for ``config``, set up once (models load once per worker)."""
    key = config.fingerprint() + config.device
    if key not in _WORKER_PIPELINES:
        pipe = build_pipeline(config)
        pipe.setup(resolve_device(config.device) if pipe.needs_device else "cpu")
        _WORKER_PIPELINES[key] = pipe
    return _WORKER_PIPELINES[key]


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` where torch sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class ChunkSpec:
    """One chunk of one half: sampled frames ``start`` (inclusive) to ``stop`` (exclusive)."""

    game: str
    game_id: str
    half: int
    chunk: int
    video: VideoInfo
    start: int
    stop: int
    version: int = 0  # the version of the game's output it writes (matchflow.storage.layout.OutputLayout)


def plan_chunks(
    game: str, game_id: str, half: int, video: VideoInfo, config: PipelineConfig, version: int = 0
) -> list[ChunkSpec]:
    """Cut a half into chunks of ``config.chunk_frames`` sampled frames, writing output version ``version``."""
    n = len(sample_indices(video.n_frames, video.fps, config.fps))
    return [
        ChunkSpec(game, game_id, half, i, video, start, min(start + config.chunk_frames, n), version)
        for i, start in enumerate(range(0, n, config.chunk_frames))
    ]


@dataclass
class ChunkResult:
    """What a chunk task returns: small metadata only."""

    game_id: str
    half: int
    chunk: int
    frames: int
    rows: dict[str, int]
    seconds: dict[str, float]
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started: float = 0.0  # unix time (s) the chunk started on its worker
    wall: float = 0.0  # wall seconds of the chunk on its worker


def process_chunk(
    spec: ChunkSpec,
    config: PipelineConfig,
    layout: OutputLayout,
    pipeline: Pipeline | None = None,
) -> ChunkResult:
    """Decode a chunk batch by batch, run the stages, write their tables and arrays; return metadata.

    Peak memory is one batch of frames plus the chunk's table rows. Writing is idempotent: the chunk's
    files are named by its position and replaced whole, Zarr slices are overwritten.
    """
    started, wall0 = time.time(), time.perf_counter()
    pipe = pipeline if pipeline is not None else worker_pipeline(config)
    so = config.storage_options
    ctx = HalfContext(spec.game, spec.game_id, spec.half, spec.video, config.fps)
    indices = sample_indices(spec.video.n_frames, spec.video.fps, config.fps)[spec.start : spec.stop]
    seconds: dict[str, float] = {"decode": 0.0}
    collected: dict[str, list[dict[str, Any]]] = {t: [] for t in pipe.tables}
    row_parts: dict[str, list[np.ndarray]] = {name: [] for name in pipe.row_arrays}
    row_attrs: dict[str, dict[str, Any]] = {}
    zarr_url = layout.zarr(spec.game_id, spec.version)
    pos = spec.start
    t0 = time.perf_counter()
    frames_iter = iter_frames(spec.video.path, indices, config.batch_frames, so, num_threads=config.decode_threads)
    for video_frames, images in frames_iter:
        seconds["decode"] += time.perf_counter() - t0
        b = len(video_frames)
        frame = np.arange(pos, pos + b, dtype=np.int32)
        batch = Batch(ctx, frame, video_frames, video_frames / spec.video.fps, images)
        pipe.run(batch, seconds)
        t1 = time.perf_counter()
        for name, values in batch.arrays.items():
            zarr_io.write_frames(zarr_url, spec.half, name, pos, values, so)
        seconds["write"] = seconds.get("write", 0.0) + time.perf_counter() - t1
        for name, rows in batch.tables.items():
            collected[name].append(rows)
        for name, values in batch.row_arrays.items():
            row_parts[name].append(values)
            row_attrs[name] = batch.array_attrs.get(name, {})
        pos += b
        t0 = time.perf_counter()
    if pos != spec.stop:
        raise RuntimeError(
            f"{spec.video.path}: decoded {pos - spec.start} sampled frames of chunk {spec.chunk}, "
            f"expected {spec.stop - spec.start}"
        )
    t1 = time.perf_counter()
    rows_written: dict[str, int] = {}
    fps_native = spec.video.fps
    for name, table in pipe.row_arrays.items():
        if not row_parts[name]:
            raise RuntimeError(f"chunk {spec.chunk} of {spec.game} half {spec.half}: no rows of array {name!r} were "
                               f"put (a stage that writes it must put it in every batch, with 0 rows if need be)")
        values = np.concatenate(row_parts[name])
        zarr_io.write_row_part(zarr_url, spec.half, name, spec.chunk, values, contract.array_contract(name).dtype,
                               row_attrs.get(name), so)
        n_rows = sum(len(p["frame"]) for p in collected[table])
        if n_rows != len(values):
            raise RuntimeError(f"chunk {spec.chunk}: array {name!r} has {len(values)} rows, table {table!r} {n_rows}")
    for name, parts in collected.items():
        merged = _concat_rows(parts)
        if name in pipe.row_arrays.values():  # the row's index in the chunk's part; offset when the half is assembled
            merged["row"] = np.arange(len(merged["frame"]), dtype=np.int32)
        merged["t"] = _row_times(merged["frame"], indices, spec.start, fps_native)
        rows_written[name] = tables.write_part(
            layout, name, spec.game_id, spec.game, spec.half, spec.chunk, merged, so, spec.version
        )
    seconds["write"] = seconds.get("write", 0.0) + time.perf_counter() - t1
    return ChunkResult(
        spec.game_id, spec.half, spec.chunk, spec.stop - spec.start, rows_written, seconds,
        started=started, wall=time.perf_counter() - wall0,
    )


def _concat_rows(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {"frame": np.zeros(0, dtype=np.int32)}
    keys = list(parts[0])
    out: dict[str, Any] = {}
    for k in keys:
        vals = [p[k] for p in parts]
        if all(isinstance(v, np.ndarray) for v in vals):
            out[k] = np.concatenate(vals)
        else:
            out[k] = [x for v in vals for x in v]
    return out


def _row_times(frame: np.ndarray, indices: np.ndarray, start: int, native_fps: float) -> np.ndarray:
    """Seconds from the start of the half of each row: the time of its sampled frame's source frame."""
    return indices[np.asarray(frame, dtype=np.int64) - start] / native_fps

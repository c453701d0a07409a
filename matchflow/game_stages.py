"""Running the game-level stages of one half, as plain functions over the output root.

A half's game-level stages run after every chunk of the half is written and before the game is committed
(:mod:`matchflow.flows.scheduler` orders it). They read the half's rows back from the chunk files, in chunk
order, and put columns back by rewriting each chunk's file whole (atomically), so a rerun after a crash
replaces the same files and no row is ever duplicated. Memory: one half's declared columns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import zarr

from matchflow.config import PipelineConfig
from matchflow.pipeline import Pipeline, worker_pipeline
from matchflow.stages.base import HalfContext, HalfData, StageContractError
from matchflow.storage import arrays as zarr_io
from matchflow.storage import tables
from matchflow.storage.contract import HALF_TABLES, KEY_COLUMNS, key_columns
from matchflow.storage.layout import OutputLayout
from matchflow.video import VideoInfo


@dataclass(frozen=True)
class HalfSpec:
    """One half of a game whose chunks (numbers ``chunks``) are all written."""

    game: str
    game_id: str
    half: int
    video: VideoInfo
    chunks: tuple[int, ...]
    version: int = 0  # the version of the game's output being written


@dataclass
class HalfResult:
    """What a half's game-level task returns: small metadata only."""

    game_id: str
    half: int
    seconds: dict[str, float]  # wall seconds of each game-level stage


def _numpy(col: pa.ChunkedArray) -> np.ndarray:
    """An Arrow column as numpy: floats with NaN for nulls, other types as objects where they hold nulls."""
    if pa.types.is_floating(col.type):
        return col.to_numpy().astype(col.type.to_pandas_dtype(), copy=False)
    if pa.types.is_dictionary(col.type):
        return np.asarray(col.cast(pa.string()).to_pylist(), dtype=object)
    if col.null_count or pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
        return np.asarray(col.to_pylist(), dtype=object)
    return col.to_numpy()


class HalfStore(HalfData):
    """:class:`matchflow.stages.base.HalfData` over an output root, for one stage at a time: it reads only what
    the stage declares in ``reads`` and writes only what it declares in ``writes``."""

    def __init__(self, spec: HalfSpec, config: PipelineConfig, layout: OutputLayout) -> None:
        self.spec = spec
        self.ctx = HalfContext(spec.game, spec.game_id, spec.half, spec.video, config.fps)
        self.layout = layout
        self.storage_options = config.storage_options
        self._stage = ""
        self._reads: frozenset[str] = frozenset()
        self._writes: frozenset[str] = frozenset()
        self._counts: dict[str, list[int]] = {}

    def for_stage(self, name: str, reads: tuple[str, ...], writes: tuple[str, ...]) -> HalfStore:
        self._stage, self._reads, self._writes = name, frozenset(reads), frozenset(writes)
        return self

    def table(self, name: str) -> dict[str, np.ndarray]:
        cols = [key.partition(".")[2] for key in self._reads if key.partition(".")[0] == name]
        if not cols:
            raise StageContractError(f"stage {self._stage!r} read table {name!r}, which it does not declare in `reads`")
        wanted = [c for c in KEY_COLUMNS if c not in cols] + sorted(cols)
        parts = [tables.read_part(self.layout, name, self.spec.game_id, self.spec.half, c, wanted,
                                  self.storage_options, self.spec.version) for c in self.spec.chunks]
        self._counts[name] = [p.num_rows for p in parts]
        whole = pa.concat_tables(parts)
        return {c: _numpy(whole.column(c)) for c in wanted}

    def array(self, name: str) -> np.ndarray:
        if f"arrays/{name}" not in self._reads:
            raise StageContractError(f"stage {self._stage!r} read array {name!r}, which it does not declare in `reads`")
        store = zarr_io.open_game_group(self.layout.zarr(self.spec.game_id, self.spec.version), self.storage_options, mode="r")
        arr = store[f"{self.spec.half}/{name}"]
        assert isinstance(arr, zarr.Array)
        return np.asarray(arr[:])

    def put_columns(self, table: str, **columns: Any) -> None:
        for name in columns:
            if f"{table}.{name}" not in self._writes:
                raise StageContractError(
                    f"stage {self._stage!r} wrote {table}.{name}, which it does not declare in `writes`")
        counts = self._counts.get(table)
        if counts is None:  # the stage wrote without reading: count the rows of each chunk's file
            counts = [tables.read_part(self.layout, table, self.spec.game_id, self.spec.half, c, ["frame"],
                                       self.storage_options, self.spec.version).num_rows for c in self.spec.chunks]
            self._counts[table] = counts
        total = sum(counts)
        for name, values in columns.items():
            if len(values) != total:
                raise StageContractError(
                    f"stage {self._stage!r}: {table}.{name} has {len(values)} rows, the half has {total}")
        start = 0
        for chunk, n in zip(self.spec.chunks, counts):
            part = {k: v[start:start + n] for k, v in columns.items()}
            tables.replace_columns(self.layout, table, self.spec.game_id, self.spec.half, chunk, part,
                                   self.storage_options, self.spec.version)
            start += n


    def put_table(self, table: str, **columns: Any) -> None:
        if table not in HALF_TABLES:
            raise StageContractError(f"stage {self._stage!r} wrote table {table!r} whole; only half tables "
                                     f"({sorted(HALF_TABLES)}) are written whole, others get columns")
        key = key_columns(table)[2]
        for name in columns:
            if name != key and f"{table}.{name}" not in self._writes:
                raise StageContractError(
                    f"stage {self._stage!r} wrote {table}.{name}, which it does not declare in `writes`")
        tables.write_part(self.layout, table, self.spec.game_id, self.spec.game, self.spec.half, 0, columns,
                          self.storage_options, self.spec.version)


def assemble_row_array(spec: HalfSpec, name: str, table: str, config: PipelineConfig, layout: OutputLayout) -> None:
    """Concatenate the chunk parts of row-aligned array ``name`` into the half's array and point the rows of
    ``table`` at it (``row`` = the chunk's offset + the row's index in its chunk). Done again, it writes the same."""
    so = config.storage_options
    counts = zarr_io.assemble_rows(layout.zarr(spec.game_id, spec.version), spec.half, name, list(spec.chunks), so)
    offset = 0
    for chunk, n in zip(spec.chunks, counts):
        tables.replace_columns(layout, table, spec.game_id, spec.half, chunk,
                               {"row": np.arange(offset, offset + n, dtype=np.int32)}, so, spec.version)
        offset += n


def process_half(
    spec: HalfSpec, config: PipelineConfig, layout: OutputLayout, pipeline: Pipeline | None = None
) -> HalfResult:
    """Assemble the half's row-aligned arrays, then run every game-level stage on the half (whose chunks are all
    written); returns each step's wall time."""
    pipe = pipeline if pipeline is not None else worker_pipeline(config)
    store = HalfStore(spec, config, layout)
    seconds: dict[str, float] = {}
    for name, table in pipe.row_arrays.items():
        t0 = time.perf_counter()
        assemble_row_array(spec, name, table, config, layout)
        seconds["assemble"] = seconds.get("assemble", 0.0) + time.perf_counter() - t0
    for st in pipe.game_stages:
        t0 = time.perf_counter()
        st.process_half(store.for_stage(st.name, st.reads, st.writes))
        seconds[st.name] = seconds.get(st.name, 0.0) + time.perf_counter() - t0
    return HalfResult(spec.game_id, spec.half, seconds)

"""The stage interface: what a stage reads, what it writes, its typed parameters, and how it runs.

Two levels of stage:

- a :class:`FrameStage` runs inside every chunk task, on each batch of decoded frames (:class:`Batch`);
- a :class:`GameStage` runs once per half, after every chunk of the half is written and before the game is
  committed, on the half's tables and arrays read back from the output (:class:`HalfData`); it is where
  work that is sequential over a half (tracking, team assignment, temporal smoothing) belongs.

Resources are named by strings:

- ``image``: the decoded RGB frames of the batch, ``(B, H, W, 3)`` uint8, OpenCV pixel convention;
- ``<table>.<column>``: a column of a contract table (``players.x1``, ``calibration.homography``);
- ``arrays/<name>``: a frame-aligned Zarr array of the half (``arrays/topview_cc``).

A stage lists its ``reads`` and ``writes``; the pipeline checks the chain before any work starts: every
read is produced by an earlier stage (or is ``image``), nothing is written twice, every table column is in
the contract, and no frame-level stage reads what a game-level stage writes (game-level stages run after the
frame-level ones). While running, a stage can only put what it declared.

Parameters (``stage_params.<stage>`` of the configuration) are a pydantic model per stage (:attr:`Stage.Params`),
validated with the run configuration before any work; an error names the stage and the field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from matchflow.storage.arrays import ArraySpec
from matchflow.storage.contract import array_contract
from matchflow.video import VideoInfo

IMAGE = "image"
SOURCES = frozenset({IMAGE})


@dataclass(frozen=True)
class HalfContext:
    """What a stage knows of the half being processed."""

    game: str
    game_id: str
    half: int
    video: VideoInfo
    fps: float  # sampling rate, frames per second


class StageContractError(RuntimeError):
    """A stage put something it did not declare, or rows of the wrong shape."""


@dataclass
class Batch:
    """One batch of sampled frames and everything the stages produced for it so far.

    ``frame``: sampled frame indices within the half (B,); ``video_frame``: source frame numbers (B,);
    ``t``: seconds from the start of the half (B,); ``image``: RGB frames (B, H, W, 3) uint8.
    Table rows are column dicts that always hold ``frame`` (the sampled frame of each row).
    """

    ctx: HalfContext
    frame: np.ndarray
    video_frame: np.ndarray
    t: np.ndarray
    image: np.ndarray
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    array_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    row_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    _allowed: frozenset[str] = frozenset()
    _stage: str = ""

    def __len__(self) -> int:
        return len(self.frame)

    def _check(self, key: str) -> None:
        if key not in self._allowed:
            raise StageContractError(f"stage {self._stage!r} wrote {key!r}, which it does not declare in `writes`")

    def put_rows(self, table: str, frame: np.ndarray, **columns: Any) -> None:
        """Create the rows of ``table`` for this batch; ``frame`` gives each row's sampled frame."""
        if table in self.tables:
            raise StageContractError(f"stage {self._stage!r} created rows of {table!r}, which already has rows")
        n = len(frame)
        rows: dict[str, np.ndarray] = {"frame": np.asarray(frame, dtype=np.int32)}
        for name, values in columns.items():
            self._check(f"{table}.{name}")
            if len(values) != n:
                raise StageContractError(f"stage {self._stage!r}: {table}.{name} has {len(values)} rows, expected {n}")
            rows[name] = values
        self.tables[table] = rows

    def put_columns(self, table: str, **columns: Any) -> None:
        """Add columns to the rows of ``table`` that an earlier stage created (same row order)."""
        if table not in self.tables:
            raise StageContractError(f"stage {self._stage!r} added columns to {table!r}, which has no rows yet")
        n = len(self.tables[table]["frame"])
        for name, values in columns.items():
            self._check(f"{table}.{name}")
            if len(values) != n:
                raise StageContractError(f"stage {self._stage!r}: {table}.{name} has {len(values)} rows, expected {n}")
            self.tables[table][name] = values

    def put_array(self, name: str, values: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        """Set a frame-aligned array for this batch (first axis: the B frames); ``attrs`` tells later stages
        how to read it (for instance the pixel scale of a mask grid), in ``array_attrs[name]``."""
        self._check(f"arrays/{name}")
        if len(values) != len(self):
            raise StageContractError(f"stage {self._stage!r}: array {name!r} has {len(values)} frames, expected {len(self)}")
        self.arrays[name] = values
        self.array_attrs[name] = dict(attrs or {})


    def put_row_array(self, name: str, values: np.ndarray, attrs: dict[str, Any] | None = None) -> None:
        """Set a row-aligned array (one row per row its table got in this batch, in the same order; see
        :class:`matchflow.storage.contract.ArrayContract`). The table's ``row`` column is filled by the pipeline:
        the index of each row in the half's array."""
        self._check(f"arrays/{name}")
        table = array_contract(name).rows_of
        if table is None:
            raise StageContractError(f"stage {self._stage!r}: array {name!r} is frame-aligned (use put_array)")
        if table not in self.tables:
            raise StageContractError(f"stage {self._stage!r}: array {name!r} has one row per {table!r} row; put the "
                                     "rows first")
        n = len(self.tables[table]["frame"])
        if len(values) != n:
            raise StageContractError(f"stage {self._stage!r}: array {name!r} has {len(values)} rows, {table!r} {n}")
        self.row_arrays[name] = values
        self.array_attrs[name] = dict(attrs or {})


class StageParams(BaseModel):
    """Parameters of a stage: subclasses add typed fields with their defaults; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StageParamsError(ValueError):
    """A stage's parameters are invalid; the message names the stage and each offending field."""


def parse_params(stage: str, params_class: type[StageParams], raw: Mapping[str, Any] | StageParams | None) -> StageParams:
    """``raw`` (``stage_params.<stage>``) validated into ``params_class``; StageParamsError names the fields."""
    if isinstance(raw, params_class):
        return raw
    try:
        return params_class.model_validate(dict(raw or {}))
    except ValidationError as exc:
        known = sorted(params_class.model_fields)
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                parts.append(f"stage_params.{stage}.{where}: unknown parameter; known: {known}")
            else:
                got = f" (got {e['input']!r})" if where and e["type"] != "missing" else ""
                parts.append(f"stage_params.{stage}.{where}: {e['msg']}{got}" if where else f"stage_params.{stage}: {e['msg']}")
        raise StageParamsError("; ".join(parts)) from None


class Stage(ABC):
    """What every stage declares. Subclasses set ``name``, ``reads``, ``writes``, ``Params`` and ``version``.

    ``params`` is the validated ``stage_params[name]`` (an instance of ``Params``). ``setup`` runs once per
    worker process (load models there, on ``device``).
    """

    name: ClassVar[str]
    # not ClassVar: a stage may set its reads and writes per instance, from its params (the features stage)
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    version: ClassVar[str] = "1"
    Params: ClassVar[type[StageParams]] = StageParams
    #: True for a stage that wants a GPU (a neural network): when the pipeline has one and the run targets GPUs
    #: (cluster ``cuda``, device ``cuda``, or ``gpu_resource: true``), its tasks ask Dask for the worker resource
    #: ``GPU: 1`` so that they run only on workers that declare it (see flows/cluster.py).
    uses_gpu: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        self.params = parse_params(self.name, self.Params, params)

    def setup(self, device: str) -> None:
        """Load models and other per-process state (called once per worker process) on ``device`` (``cpu`` or
        ``cuda``). Stages that do not override it need no device: a pipeline of only such stages is set up
        without resolving ``device: auto`` (which imports torch)."""

    def model_checksums(self) -> dict[str, str]:
        """SHA-256 of every weight file this stage uses, by model name (none by default)."""
        return {}


class FrameStage(Stage):
    """A frame-level stage: ``process`` runs on every batch of every chunk, on the chunk's worker."""

    def array_specs(self, video: VideoInfo) -> dict[str, ArraySpec]:
        """The frame-aligned arrays this stage writes, for a video of this size (none by default)."""
        return {}

    @abstractmethod
    def process(self, batch: Batch) -> None:
        """Read from ``batch`` and put this stage's outputs into it."""


class HalfData(ABC):
    """What a game-level stage sees of one half: its declared reads, read back from the output, and a way to
    write its declared outputs (see :class:`matchflow.game_stages.HalfStore`, the implementation over an
    output root).

    Rows of a table come in a fixed order (by chunk, then as the frame-level stages wrote them); columns put
    back must follow that order.
    """

    ctx: HalfContext

    @abstractmethod
    def table(self, name: str) -> dict[str, np.ndarray]:
        """The half's rows of contract table ``name``: the key columns and the declared columns, as arrays
        (nulls as NaN for floats; object arrays for lists and strings)."""

    @abstractmethod
    def array(self, name: str) -> np.ndarray:
        """The half's frame-aligned array ``name`` (frames first)."""

    @abstractmethod
    def put_columns(self, table: str, **columns: Any) -> None:
        """Set columns of the half's rows of ``table`` (same length and order as :meth:`table` returns)."""

    @abstractmethod
    def put_table(self, table: str, **columns: Any) -> None:
        """Write the half's rows of half table ``table`` (``tracks``): its key column and the declared columns,
        replacing what a previous run wrote for the half."""


class GameStage(Stage):
    """A game-level stage: ``process_half`` runs once per half, after all the half's chunks are written and
    before the game is committed, on a worker of the run's cluster."""

    @abstractmethod
    def process_half(self, half: HalfData) -> None:
        """Read the half's tables and arrays from ``half`` and put this stage's outputs back."""

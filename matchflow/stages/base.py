"""The stage interface: what a frame-level stage reads, what it writes, and how it runs on a batch.

Resources are named by strings:

- ``image``: the decoded RGB frames of the batch, ``(B, H, W, 3)`` uint8, OpenCV pixel convention;
- ``<table>.<column>``: a column of a contract table (``players.x1``, ``calibration.homography``);
- ``arrays/<name>``: a frame-aligned Zarr array of the half (``arrays/topview_cc``).

A stage lists its ``reads`` and ``writes``; the pipeline checks the chain before any work starts: every
read is produced by an earlier stage (or is ``image``), nothing is written twice, every table column is in
the contract. While running, a stage can only put what it declared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from matchflow.storage.arrays import ArraySpec
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


class Stage(ABC):
    """A frame-level stage. Subclasses set ``name``, ``reads``, ``writes`` and implement ``process``.

    ``params`` comes from the configuration's ``stage_params[name]``. ``setup`` runs once per worker
    process (load models there, on ``device``); ``process`` runs on every batch.
    """

    name: ClassVar[str]
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = "1"
    #: True for a stage that wants a GPU (a neural network): when the pipeline has one and the run targets GPUs
    #: (cluster ``cuda``, device ``cuda``, or ``gpu_resource: true``), chunk tasks ask Dask for the worker resource
    #: ``GPU: 1`` so that they run only on workers that declare it (see flows/corpus.py).
    uses_gpu: ClassVar[bool] = False

    #: The parameter names ``stage_params.<name>`` may hold (None: any); others fail before any work.
    known_params: ClassVar[frozenset[str] | None] = None

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})
        if self.known_params is not None:
            unknown = set(self.params) - self.known_params
            if unknown:
                raise ValueError(
                    f"stage_params.{self.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(self.known_params)}"
                )

    def setup(self, device: str) -> None:
        """Load models and other per-process state (called once per worker process) on ``device`` (``cpu`` or
        ``cuda``). Stages that do not override it need no device: a pipeline of only such stages is set up
        without resolving ``device: auto`` (which imports torch)."""

    def array_specs(self, video: VideoInfo) -> dict[str, ArraySpec]:
        """The frame-aligned arrays this stage writes, for a video of this size (none by default)."""
        return {}

    def model_checksums(self) -> dict[str, str]:
        """SHA-256 of every weight file this stage uses, by model name (none by default)."""
        return {}

    @abstractmethod
    def process(self, batch: Batch) -> None:
        """Read from ``batch`` and put this stage's outputs into it."""

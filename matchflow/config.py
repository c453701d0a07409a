"""The one typed configuration of a run: YAML file plus command-line overrides.

Every parameter of the pipeline lives here. The fingerprint covers the fields that change what a run
writes (sampling, chunking, stages and their parameters); it goes into each game's manifest so that a
rerun can tell whether a committed game is still up to date.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Fields that only say *how* a run executes, not *what* it writes: left out of the fingerprint. ``sport`` only
#: chooses the default ``stages``, which the fingerprint covers.
EXECUTION_FIELDS = frozenset(
    {"workers", "scheduler", "cluster", "gpu_resource", "storage_options", "retries", "memory_limit", "decode_threads",
     "sport"}
)

#: The stages each sport runs when the configuration lists none, in order: every stage the product has that
#: makes sense for the sport. Basketball has no pitch model: its frames get detection, not calibration.
PRESETS: dict[str, tuple[str, ...]] = {
    "soccer": ("frames", "calibration", "detection", "localization", "graph", "topview", "features", "reid", "tracking",
               "teams"),
    "basketball": ("frames", "detection"),
}
Sport = Literal["soccer", "basketball"]

#: The Dask worker resource a chunk task asks for when its pipeline has a GPU stage (see ``Stage.uses_gpu``).
#: LocalCUDACluster workers declare it; external GPU workers are started with ``--resources GPU=1``.
GPU_RESOURCE = "GPU"


SCHEDULER_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the field."""


class PipelineConfig(BaseModel):
    """Parameters of a Matchflow run.

    Units: ``fps`` in sampled frames per second of video time; ``chunk_frames`` and ``batch_frames`` in
    sampled frames.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fps: float = Field(2.0, gt=0, le=120, description="sampling rate, frames per second (SoccerNet: 2)")
    chunk_frames: int = Field(
        256, ge=1, le=100_000, description="sampled frames per chunk task (the unit of scheduling and of writing)"
    )
    batch_frames: int = Field(
        16, ge=1, le=4096, description="sampled frames decoded and processed at once inside a chunk (bounds memory)"
    )
    resolution: Literal["highest", "lowest"] | int = Field(
        "highest", description="which video of a half to use when several resolutions exist, or a height such as 720"
    )
    sport: Sport = Field("soccer", description="the sport of the corpus; its preset is the default of `stages`")
    stages: list[str] = Field(
        default_factory=list,
        description="stages, in order (frame-level ones run in every chunk, game-level ones once per half after "
        "them); default: the preset of `sport` (see PRESETS)",
    )
    stage_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-stage parameters, keyed by stage name"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where models run on each worker")
    # execution only (not fingerprinted)
    decode_threads: int = Field(
        1, ge=0, le=64, description="FFmpeg threads per decoding worker (1: one worker per core; 0: all cores)"
    )
    workers: int | None = Field(None, ge=1, le=1024, description="local Dask workers (default: one per core)")
    scheduler: str | None = Field(
        None, description="address of an existing Dask scheduler, tcp://HOST:PORT (alias of cluster: tcp://HOST:PORT)"
    )
    cluster: str | None = Field(
        None,
        description="Dask cluster: 'local' (LocalCluster, the default), 'cuda' (dask-cuda LocalCUDACluster, one "
        "worker per GPU) or the address of an existing scheduler, tcp://HOST:PORT",
    )
    gpu_resource: bool | None = Field(
        None,
        description="chunk tasks of a pipeline with a GPU stage ask Dask for the worker resource GPU=1: "
        "None (auto: on cluster 'cuda', or device cuda), True (always), False (never)",
    )
    retries: int = Field(2, ge=0, le=20, description="retries of a failed chunk task (a lost worker, a transient error)")
    memory_limit: str | None = Field(
        "auto",
        description="memory limit of each local Dask worker, e.g. '4GiB' ('auto': the machine's memory / workers; "
        "None: no limit); a worker above 95% of it is restarted by its nanny",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for s3:// corpora and outputs (never logged or written)"
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        """No ``stages`` (absent, null or empty): the preset of ``sport``."""
        if isinstance(data, dict) and not data.get("stages"):
            sport = data.get("sport", "soccer")
            if sport in PRESETS:
                data = {**data, "stages": list(PRESETS[sport])}
        return data

    @field_validator("memory_limit")
    @classmethod
    def _memory_size(cls, value: str | None) -> str | None:
        if value is None or value == "auto":
            return value
        from dask.utils import parse_bytes

        try:
            if parse_bytes(value) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError(f"{value!r} is not a memory size such as 4GiB or 512MB, nor auto") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        if self.chunk_frames % self.batch_frames:
            raise ValueError(
                f"chunk_frames ({self.chunk_frames}) must be a multiple of batch_frames ({self.batch_frames})"
            )
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages lists a stage twice: {self.stages}")
        if self.scheduler is not None and not self.scheduler.startswith(SCHEDULER_SCHEMES):
            raise ValueError(f"scheduler must be an address such as tcp://HOST:PORT, got {self.scheduler!r}")
        if self.cluster is not None and self.cluster not in ("local", "cuda") and not self.cluster.startswith(
            SCHEDULER_SCHEMES
        ):
            raise ValueError(f"cluster must be local, cuda or a scheduler address tcp://HOST:PORT, got {self.cluster!r}")
        if self.scheduler is not None and self.cluster is not None and self.cluster != self.scheduler:
            raise ValueError(
                f"scheduler ({self.scheduler!r}) and cluster ({self.cluster!r}) disagree: scheduler is an alias "
                "of cluster: tcp://HOST:PORT; give only one of them"
            )
        return self

    @property
    def cluster_kind(self) -> str:
        """``local``, ``cuda`` or ``address`` (an existing scheduler: see ``scheduler_address``)."""
        target = self.cluster or self.scheduler or "local"
        return target if target in ("local", "cuda") else "address"

    @property
    def scheduler_address(self) -> str | None:
        """The address of the existing Dask scheduler to use, from ``cluster`` or its alias ``scheduler``."""
        return (self.cluster or self.scheduler) if self.cluster_kind == "address" else None

    def fingerprint(self) -> str:
        """Hex SHA-256 of the fields that change the output (see EXECUTION_FIELDS)."""
        data = self.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def public_dict(self) -> dict[str, Any]:
        """The configuration as written to manifests: everything but the storage options (credentials)."""
        return self.model_dump(mode="json", exclude={"storage_options"})


def _format_validation_error(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        parts.append(f"{loc}: {e['msg'].removeprefix('Value error, ')}")
    return f"invalid configuration in {source}: " + "; ".join(parts)


def load_config(path: str | Path | None = None, **overrides: Any) -> PipelineConfig:
    """Read a YAML configuration file (optional) and apply overrides (``None`` values are ignored).

    Raises ConfigError naming the file and the offending field.
    """
    data: dict[str, Any] = {}
    source = "command-line options"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping of fields, got {type(loaded).__name__}")
        data.update(loaded)
        source = f"{path} (with command-line options)" if any(v is not None for v in overrides.values()) else str(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    try:
        check_stage_params(config)
    except ValueError as exc:
        raise ConfigError(f"invalid configuration in {source}: {exc}") from None
    return config


def check_stage_params(config: PipelineConfig) -> None:
    """Validate ``stage_params`` against each listed stage's typed parameters (``Stage.Params``); raises
    ValueError naming the stage and the field. Unknown stage names are left to the pipeline's chain check."""
    from matchflow.stages.base import parse_params
    from matchflow.stages.registry import stage_class

    for entry in config.stages:
        try:
            cls = stage_class(entry)
        except KeyError:
            continue
        parse_params(cls.name, cls.Params, config.stage_params.get(cls.name))

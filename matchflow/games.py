"""The life of one game in a run, as plain functions: decide, prepare, commit or fail.

Order of writes for a game: remove what earlier, uncommitted attempts left, create the Zarr group of the
version being written (0 for a new game, the committed version + 1 for a game being redone, beside the
committed one), write its chunk files, write the manifest naming it last, then remove the versions it
replaces. Readers go by the manifest, so they see the committed version whole until the new one is, and then
the new one whole. A run killed anywhere leaves the committed version (or none, for a new game) and files no
reader sees, which the next run of the game removes: every row exists exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matchflow import __version__
from matchflow.config import PipelineConfig
from matchflow.pipeline import ChunkResult, ChunkSpec, Pipeline, plan_chunks
from matchflow.storage import arrays as zarr_io
from matchflow.storage import fs
from matchflow.storage.contract import CONTRACT_VERSION, TABLES
from matchflow.storage.corpus import Game
from matchflow.storage.layout import OutputLayout
from matchflow.storage.manifest import (
    COMMITTED,
    FAILED,
    committed_version,
    group_versions,
    read_manifest,
    write_manifest,
)
from matchflow.storage.tables import other_version_files
from matchflow.video import VideoError, VideoInfo, probe, sample_indices

if TYPE_CHECKING:
    from matchflow.game_stages import HalfResult

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, with the git commit (and ``-dirty``) when run from a checkout."""
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" if commit else __version__


def is_up_to_date(manifest: dict[str, Any] | None, config: PipelineConfig) -> bool:
    """True when a game's manifest says it is committed with this configuration and contract."""
    return (
        manifest is not None
        and manifest.get("status") == COMMITTED
        and manifest.get("config_fingerprint") == config.fingerprint()
        and manifest.get("contract_version") == CONTRACT_VERSION
    )


def needs_run(layout: OutputLayout, game: Game, config: PipelineConfig, force: bool) -> bool:
    """Whether a game must be (re)processed: forced, never committed, or committed with another config."""
    if force:
        return True
    return not is_up_to_date(read_manifest(layout, game.game_id, config.storage_options), config)


@dataclass
class GamePlan:
    """A prepared game: its probed halves and the chunks to run."""

    game: Game
    videos: dict[int, VideoInfo]
    chunks: list[ChunkSpec]
    started_at: str
    version: int = 0  # the output version being written (see matchflow.storage.layout.OutputLayout)


def remove_versions(
    layout: OutputLayout, game_id: str, keep: set[int], storage_options: dict[str, Any] | None = None
) -> None:
    """Delete every file of a game's output that belongs to none of the versions ``keep``."""
    filesystem = fs.filesystem(layout.root, storage_options)
    for table in TABLES:
        stale = [fs.strip_protocol(f) for f in other_version_files(layout, table, game_id, keep, storage_options)]
        if stale:
            filesystem.rm(stale)
    for version in group_versions(layout, storage_options).get(game_id, []):
        if version not in keep:
            fs.remove_tree(layout.zarr(game_id, version), storage_options)


def prepare_game(game: Game, config: PipelineConfig, layout: OutputLayout, pipeline: Pipeline) -> GamePlan:
    """Probe the halves, remove what uncommitted attempts left, create the Zarr group and arrays of the version
    to write (beside the committed one, which readers keep seeing), and cut the chunks.

    Raises VideoError (naming the file) when a half cannot be read, ValueError when the folder is not a game.
    """
    started = dt.datetime.now(dt.UTC).isoformat()
    if game.error:
        raise ValueError(game.error)
    so = config.storage_options
    videos = {half: probe(url, so) for half, url in sorted(game.halves.items())}
    for info in videos.values():
        if info.n_frames <= 0 or info.fps <= 0:
            raise VideoError(f"{info.path}: no frames to read (frames={info.n_frames}, fps={info.fps})")
    committed = committed_version(read_manifest(layout, game.game_id, so))
    version = 0 if committed is None else committed + 1
    remove_versions(layout, game.game_id, set() if committed is None else {committed}, so)
    zarr_url = layout.zarr(game.game_id, version)
    zarr_io.open_game_group(zarr_url, so, mode="w").attrs.update(
        {"game": game.key, "game_id": game.game_id, "contract_version": CONTRACT_VERSION}
    )
    chunks: list[ChunkSpec] = []
    for half, info in videos.items():
        n_sampled = len(sample_indices(info.n_frames, info.fps, config.fps))
        zarr_io.create_half(
            zarr_url,
            half,
            n_sampled,
            pipeline.array_specs(info),
            config.batch_frames,
            {
                "video": _display_url(info.path),
                "video_fps": info.fps,
                "video_frames": info.n_frames,
                "width": info.width,
                "height": info.height,
                "sample_fps": config.fps,
                "sampled_frames": n_sampled,
            },
            so,
        )
        chunks += plan_chunks(game.key, game.game_id, half, info, config, version)
    return GamePlan(game, videos, chunks, started, version)


def _display_url(url: str) -> str:
    """A video location fit for a manifest: never any credentials embedded in a URL."""
    if "://" in url and "@" in url.split("://", 1)[1].split("/", 1)[0]:
        proto, rest = url.split("://", 1)
        return f"{proto}://{rest.split('@', 1)[1]}"
    return url


def commit_game(
    plan: GamePlan,
    results: list[ChunkResult],
    config: PipelineConfig,
    layout: OutputLayout,
    pipeline: Pipeline,
    run_id: str,
    half_results: list[HalfResult] | None = None,
) -> dict[str, Any]:
    """Write the committed manifest of a game (the commit point), then remove the version it replaces; returns
    the manifest. ``half_results``: what the game-level stages of each half returned (required for every half
    when the pipeline has such stages)."""
    got = {(r.half, r.chunk) for r in results}
    want = {(c.half, c.chunk) for c in plan.chunks}
    if got != want:
        raise RuntimeError(f"game {plan.game.key!r}: chunks {sorted(want - got)} have no result; not committing")
    if pipeline.half_level:
        done = {h.half for h in half_results or []}
        if done != set(plan.videos):
            raise RuntimeError(f"game {plan.game.key!r}: the game-level stages of half(s) "
                               f"{sorted(set(plan.videos) - done)} have no result; not committing")
    rows: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for r in results:
        for t, n in r.rows.items():
            rows[t] = rows.get(t, 0) + n
    timed: list[ChunkResult | HalfResult] = [*results, *(half_results or [])]
    for part in timed:
        for k, s in part.seconds.items():
            seconds[k] = seconds.get(k, 0.0) + s
    manifest = _manifest_base(plan.game, config, pipeline, run_id, plan.started_at)
    manifest.update(
        status=COMMITTED,
        version=plan.version,
        arrays=layout.zarr(plan.game.game_id, plan.version)[len(layout.root) + 1:],
        halves={str(h): {**asdict(v), "path": _display_url(v.path)} for h, v in plan.videos.items()},
        sampled_frames=sum(r.frames for r in results),
        chunks=len(results),
        chunk_runs=[
            {"half": r.half, "chunk": r.chunk, "frames": r.frames, "worker": r.worker,
             "started": dt.datetime.fromtimestamp(r.started, dt.UTC).isoformat(), "wall_s": round(r.wall, 3)}
            for r in sorted(results, key=lambda r: (r.half, r.chunk))
        ],
        rows=rows,
        seconds={k: round(v, 4) for k, v in sorted(seconds.items())},
        errors=[],
    )
    write_manifest(layout, plan.game.game_id, manifest, config.storage_options)
    try:  # committed: what remains of the replaced version is no reader's any more
        remove_versions(layout, plan.game.game_id, {plan.version}, config.storage_options)
    except Exception as exc:  # the next run of the game removes it
        log.warning("game %s is committed; removing its replaced output failed: %s", plan.game.key, exc)
    return manifest


def fail_game(
    game: Game, errors: list[str], config: PipelineConfig, layout: OutputLayout, pipeline: Pipeline, run_id: str,
    started_at: str | None = None,
) -> dict[str, Any]:
    """Record a failed attempt at a game; returns the manifest written.

    A game never committed gets a ``failed`` manifest (readers do not see it; the next run redoes it). A game
    with a committed version keeps it (readers go on seeing it): its manifest gains ``last_attempt``, the
    failed attempt's configuration, run and errors.
    """
    manifest = _manifest_base(game, config, pipeline, run_id, started_at)
    manifest.update(status=FAILED, errors=errors)
    previous = read_manifest(layout, game.game_id, config.storage_options)
    if committed_version(previous) is not None:
        assert previous is not None
        attempt = {k: manifest[k] for k in ("status", "errors", "run_id", "config_fingerprint", "code_version",
                                            "started_at", "finished_at")}
        manifest = {**previous, "last_attempt": attempt}
    write_manifest(layout, game.game_id, manifest, config.storage_options)
    return manifest


def _manifest_base(
    game: Game, config: PipelineConfig, pipeline: Pipeline, run_id: str, started_at: str | None
) -> dict[str, Any]:
    return {
        "contract_version": CONTRACT_VERSION,
        "game": game.key,
        "game_id": game.game_id,
        "run_id": run_id,
        "config_fingerprint": config.fingerprint(),
        "config": config.public_dict(),
        "stages": {st.name: st.version for st in pipeline.stages},
        "model_checksums": pipeline.model_checksums(),
        "code_version": code_version(),
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
    }

"""Prefect tasks of one game: prepare it, run one chunk of it, and run the game-level stages of one half, each
on a Dask worker. Thin: each calls one plain function."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from matchflow.config import PipelineConfig
from matchflow.game_stages import HalfResult, HalfSpec, process_half
from matchflow.games import GamePlan, prepare_game
from matchflow.pipeline import ChunkResult, ChunkSpec, build_pipeline, process_chunk
from matchflow.storage.corpus import Game
from matchflow.storage.layout import OutputLayout


@task(name="prepare-game", cache_policy=NO_CACHE, persist_result=False, task_run_name="prepare {game.key}")
def prepare_game_task(game: Game, config: PipelineConfig, out: str) -> GamePlan:
    """Probe the game's videos, clear its old output, create its Zarr group, cut its chunks."""
    return prepare_game(game, config, OutputLayout.at(out), build_pipeline(config))


@task(
    name="process-chunk",
    cache_policy=NO_CACHE,
    persist_result=False,
    task_run_name="{spec.game_id} h{spec.half} c{spec.chunk}",
)
def process_chunk_task(spec: ChunkSpec, config: PipelineConfig, out: str) -> ChunkResult:
    """Decode one chunk on this worker, run the stages, write the outputs; return small metadata."""
    return process_chunk(spec, config, OutputLayout.at(out))


@task(
    name="process-half",
    cache_policy=NO_CACHE,
    persist_result=False,
    task_run_name="{spec.game_id} h{spec.half} game-level",
)
def process_half_task(spec: HalfSpec, config: PipelineConfig, out: str) -> HalfResult:
    """Run the game-level stages of one half whose chunks are written; return small metadata."""
    return process_half(spec, config, OutputLayout.at(out))

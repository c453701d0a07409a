"""Prefect flow that trains the two-stream re-identification network: ``matchflow train reid``.

Thin: the flow reads the sources once per process (synthetic renders, a SoccerNet-ReID training split), runs one
task per segment of ``segment`` steps (:func:`matchflow.training.reid.train.train_reid_steps`, which checkpoints
and resumes), publishes a progress artifact after each, then writes the inference weights, their SHA-256 and
``training.json`` (configuration, data, losses, and the held-out metrics when an evaluation set is given).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import cast
from uuid import UUID

import torch
from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from matchflow.models.reid.embedder import SHIPPED_TWO_STREAM, Embedder, save_two_stream
from matchflow.training.reid.data import ReidSet, concat_sets, read_soccernet_reid, read_synthetic_reid
from matchflow.training.reid.evaluate import evaluate_reid
from matchflow.training.reid.train import ReidTrainConfig, train_reid_steps

__all__ = ["train_reid_flow", "load_reid_sources"]

_DATA: dict[tuple, ReidSet] = {}


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def load_reid_sources(sources: dict[str, str], input_size: tuple[int, int]) -> ReidSet:
    """The training crops of ``sources`` (``synthetic``: a ``matchflow synth-detection`` folder; ``soccernet``: a
    SoccerNet-ReID root, its ``train`` split), read once per process."""
    key = (tuple(sorted(sources.items())), tuple(input_size))
    if key not in _DATA:
        sets = []
        for name, path in sorted(sources.items()):
            if name == "synthetic":
                sets.append(read_synthetic_reid(path, input_size, progress=_say))
            elif name == "soccernet":
                sets.append(read_soccernet_reid(path, "train", input_size, progress=_say))
            else:
                raise ValueError(f"unknown re-identification source {name!r} (synthetic, soccernet)")
        _DATA[key] = concat_sets(sets)
    return _DATA[key]


@task(name="train-reid-segment")
def _segment(sources: dict[str, str], cfg_json: str, out: str, until: int, device: str) -> dict:
    cfg = ReidTrainConfig(**json.loads(cfg_json))
    data = load_reid_sources(sources, cfg.input_size)
    _, report = train_reid_steps(data, cfg, out, until, device, progress=_say)
    return report


@flow(name="train-reid", log_prints=True)
def train_reid_flow(out: str, sources: dict[str, str], config: dict | None = None, device: str = "cpu",
                    segment: int = 500, evaluation: ReidSet | None = None) -> dict:
    """Train to ``config["steps"]`` in segments, resuming from ``out``'s latest checkpoint; returns the content of
    ``training.json``. ``evaluation``: a held-out set scored at the end (rank-1, mAP)."""
    if not sources:
        raise ValueError("no training source given")
    cfg = ReidTrainConfig(**{**(config or {}), "sources": sorted(f"{k}:{v}" for k, v in sources.items())})
    cfg_json = json.dumps(asdict(cfg))
    data = load_reid_sources(sources, cfg.input_size)
    from matchflow.training.reid.train import latest_checkpoint

    last = latest_checkpoint(Path(out))
    step = int(last.stem.split("_")[1]) if last else 0
    artifact = cast(UUID, create_progress_artifact(progress=100.0 * step / cfg.steps, description="reid training"))
    segments = []
    t0 = time.perf_counter()
    while step < cfg.steps:
        result = _segment(sources, cfg_json, out, min(step + segment, cfg.steps), device)
        segments.append(result)
        step = result["step"]
        update_progress_artifact(artifact_id=artifact, progress=100.0 * step / cfg.steps)
    net, _ = train_reid_steps(data, cfg, out, cfg.steps, "cpu")  # loads the last checkpoint: no step left to run
    weights = Path(out) / f"{SHIPPED_TWO_STREAM}.pt"
    digest = save_two_stream(net.cpu(), weights)
    report = {
        "weights": weights.name,
        "sha256": digest,
        "config": asdict(cfg),
        "steps": step,
        "device": device,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "data": {"sources": sources, "crops": len(data), "identities": int(len(set(data.identity.tolist()))),
                 "actions": int(len(set(data.action.tolist())))},
        "last_segments": segments[-3:],
        "seconds_this_run": round(time.perf_counter() - t0, 1),
    }
    if evaluation is not None:
        report["evaluation"] = evaluate_reid(Embedder("two-stream", weights, device=device), evaluation)
    (Path(out) / "training.json").write_text(json.dumps(report, indent=1, default=str))
    return report

"""Prefect flow that trains the DeepSportLab detector: ``matchflow train detector``.

Thin: the flow loads the labelled frames once, then runs one task per segment of ``segment`` steps
(:func:`matchflow.training.detection.train.train_steps`, which checkpoints as it goes and resumes from the
latest checkpoint), publishes a progress artifact after each segment, and finally writes the weights, their
SHA-256 and ``training.json`` (configuration, data, losses, and the validation metrics when an evaluation
function is given).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import cast
from uuid import UUID

import torch
from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from matchflow.models.detection.detector import load_detector_weights
from matchflow.models.detection.network import DeepSportLabNet
from matchflow.training.detection.data import read_yolo_split
from matchflow.training.detection.train import (
    DetectorTrainConfig,
    TrainingData,
    build_network,
    export_weights,
    latest_checkpoint,
    train_steps,
)

__all__ = ["train_detector_flow", "load_sources", "DATA_CREDITS"]

DATA_CREDITS = {
    "soccer": "Roboflow Universe, football-players-detection v1 (workspace roboflow-jvuqo), CC BY 4.0",
    "basketball": "Roboflow Universe, basketball-players-fy4c2-vfsuv v17 (workspace workspace-5ujvu), CC BY 4.0",
    "synthetic": "matchflow synth-detection renders (articulated players with masks and COCO joints)",
}

_DATA: dict[tuple, TrainingData] = {}


def _say(message: str) -> None:
    """Progress on the console (not through Prefect's logger, which a quiet run filters)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def load_sources(sources: dict[str, str], input_height: int, progress: Callable[[str], None] | None = None) -> TrainingData:
    """Read the training split of each source (``soccer`` / ``basketball``: Roboflow YOLO roots;
    ``synthetic``: a ``matchflow synth-detection`` folder) into memory; cached per process."""
    key = (tuple(sorted(sources.items())), input_height)
    if key not in _DATA:
        readers = {}
        for name, path in sources.items():
            if name == "synthetic":
                from matchflow.synth.detection import read_detection_dir

                readers[name] = read_detection_dir(path)
            else:
                readers[name] = read_yolo_split(path, "train")
        _DATA[key] = TrainingData(readers, input_height, progress)
    return _DATA[key]


@task(name="train-segment")
def _segment(sources: dict[str, str], cfg_json: str, out: str, until: int, device: str,
             backbone_weights: str | None, init: str | None) -> dict:
    cfg = DetectorTrainConfig(**json.loads(cfg_json))
    data = load_sources(sources, cfg.input_height, _say)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, backbone_weights)
    if init is not None and latest_checkpoint(out) is None:  # a checkpoint, once there, wins
        load_detector_weights(net, init)
    return train_steps(net, data, cfg, out, until, device, progress=_say)


@flow(name="train-detector", log_prints=True)
def train_detector_flow(
    out: str,
    sources: dict[str, str],
    config: dict | None = None,
    device: str = "cpu",
    segment: int = 200,
    backbone_weights: str | None = None,
    evaluate: Callable[[Path], dict] | None = None,
    init: str | None = None,
) -> dict:
    """Train to ``config["steps"]`` in segments, resuming from ``out``'s latest checkpoint; returns the
    content of ``training.json``. ``sources`` maps ``soccer`` / ``basketball`` / ``synthetic`` to paths.
    ``init``: whole-detector weights to start from instead of the ImageNet backbone alone (a file, or
    ``"shipped"`` for the default weights): fine-tuning; ignored once ``out`` holds a checkpoint."""
    cfg = DetectorTrainConfig(**(config or {}))
    cfg_json = json.dumps(asdict(cfg))
    if not sources:
        raise ValueError("no training source given")
    init_from = None
    if init is not None:  # checked before any training step: a bad file fails the run at once, naming it
        init_path, init_sha = load_detector_weights(DeepSportLabNet(cfg.backbone), None if init == "shipped" else init)
        init_from = {"path": str(init_path), "sha256": init_sha}
        init = str(init_path)  # the segments load this very file
    last = latest_checkpoint(out)
    step = last[0] if last else 0
    artifact = cast(UUID, create_progress_artifact(progress=100.0 * step / cfg.steps, description="detector training"))
    segments = []
    t0 = time.perf_counter()
    while step < cfg.steps:
        until = min(step + segment, cfg.steps)
        result = _segment(sources, cfg_json, out, until, device, backbone_weights, init)
        segments.append(result)
        step = result["step"]
        update_progress_artifact(artifact_id=artifact, progress=100.0 * step / cfg.steps)
    net = build_network(cfg, backbone_weights)
    final = latest_checkpoint(out)
    if final is None:
        raise RuntimeError(f"{out}: no checkpoint after training")
    net.load_state_dict(torch.load(final[1], map_location="cpu", weights_only=True)["model"])
    weights = Path(out) / f"deepsportlab_{cfg.backbone}.pt"
    digest = export_weights(net, weights)
    report = {
        "weights": weights.name,
        "sha256": digest,
        "parameters": net.count_parameters(),
        "config": asdict(cfg),
        "init": init_from,
        "steps": final[0],
        "device": device,
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "data": {name: {"path": str(p), "credit": DATA_CREDITS.get(name, ""),
                        "frames": load_sources(sources, cfg.input_height).counts().get(name)}
                 for name, p in sources.items()},
        "last_segments": segments[-3:],
        "seconds_this_run": time.perf_counter() - t0,
    }
    if evaluate is not None:
        report["metrics"] = evaluate(weights)
    (Path(out) / "training.json").write_text(json.dumps(report, indent=1, default=str))
    return report

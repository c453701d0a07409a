"""The ``reid`` stage: a re-identification embedding for every detected person of every frame.

Crops of the ``players`` boxes (native pixels) are cut from the frame, letterboxed to the model's input and
ImageNet-normalised, then embedded in batches on the worker's device (:mod:`matchflow.models.reid.embedder`).
Writes one ``reid`` row per ``players`` row (``det``; ``row``: its row of the half's ``reid`` array) and the
``reid`` array (N, D) float16, L2-normalised; its attributes name the model and the weights' SHA-256. A frame
without people writes no rows. Parameters (``stage_params.reid``):

- ``model``: ``two-stream`` (default: appearance and body parts; reads the detector's ``poses``), an OSNet
  (``osnet_x0_25``, ``osnet_x1_0``, ...; with ``weights``, a torchreid checkpoint) or ``histogram`` (the
  colour-histogram baseline);
- ``weights``: the weights file (default for ``two-stream``: the shipped, checksum-verified ones);
- ``batch_size``: crops per forward pass (default 64 on CPU, 512 on CUDA).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from matchflow.stages.base import IMAGE, Batch, FrameStage, StageParams

if TYPE_CHECKING:
    from matchflow.models.reid.embedder import Embedder

Model = Literal["two-stream", "osnet_x1_0", "osnet_x0_75", "osnet_x0_5", "osnet_x0_25", "osnet_ibn_x1_0", "histogram"]
#: Where the shipped two-stream weights are (registry ``reid_twostream_resnet18``), checked without importing torch.
SHIPPED = Path(str(files("matchflow.data").joinpath("reid", "reid_twostream_resnet18.pt")))
_BOXES = ("players.det", "players.x1", "players.y1", "players.x2", "players.y2")


class ReidParams(StageParams):
    """``stage_params.reid`` (see the module docstring)."""

    model: Model = "two-stream"
    weights: str | None = None
    batch_size: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _weights_exist(self) -> ReidParams:
        if self.model.startswith("osnet") and not self.weights:
            raise ValueError(f"model {self.model} needs `weights`, a torchreid checkpoint (none ships)")
        if self.model == "two-stream" and not self.weights and not SHIPPED.is_file():
            raise ValueError("model two-stream: no weights ship with this installation "
                             f"({SHIPPED}); give `weights` (a file of `matchflow train reid`), or model histogram")
        return self


class ReidStage(FrameStage):
    """Re-identification embeddings of the detected people (see the module docstring)."""

    name = "reid"
    Params = ReidParams
    params: ReidParams
    reads: tuple[str, ...] = (IMAGE, *_BOXES, "poses.det", "poses.keypoints")
    writes = ("reid.det", "reid.row", "arrays/reid")
    version = "1"
    uses_gpu = True

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        if self.params.model != "two-stream":  # only the two-stream model uses the body parts
            self.reads = (IMAGE, *_BOXES)
        self._embedder: Embedder | None = None
        self._device = "cpu"

    def setup(self, device: str) -> None:
        self._device = device

    def _get(self) -> Embedder:
        if self._embedder is None:
            from matchflow.models.reid.embedder import Embedder

            self._embedder = Embedder(self.params.model, self.params.weights, self._device, self.params.batch_size)
        return self._embedder

    def model_checksums(self) -> dict[str, str]:
        if self.params.model == "histogram":
            return {}
        from matchflow.models.reid.embedder import SHIPPED_TWO_STREAM
        from matchflow.models.weights import resolve_weights, sha256_file

        name = SHIPPED_TWO_STREAM if self.params.model == "two-stream" else self.params.model
        return {f"reid_{self.params.model}": sha256_file(resolve_weights(name, self.params.weights))}

    def process(self, batch: Batch) -> None:
        emb = self._get()
        players = batch.tables.get("players", {"frame": np.zeros(0, np.int32)})
        frame = np.asarray(players["frame"], np.int32)
        det = np.asarray(players.get("det", np.zeros(0, np.int16)), np.int16)
        boxes = np.stack([np.asarray(players[c], np.float64) for c in ("x1", "y1", "x2", "y2")], axis=1) \
            if len(frame) else np.zeros((0, 4))
        keypoints = self._keypoints(batch, frame, det) if emb.needs_parts else None
        crops: list[np.ndarray] = []
        heat: list[np.ndarray] = []
        for i, f in enumerate(batch.frame):
            sel = np.flatnonzero(frame == f)
            if len(sel):
                c, h = emb.crops(batch.image[i], boxes[sel], None if keypoints is None else keypoints[sel])
                crops.append(c)
                if h is not None:
                    heat.append(h)
        order = np.concatenate([np.flatnonzero(frame == f) for f in batch.frame]) if len(frame) else np.zeros(0, int)
        if crops:
            vectors = emb.embed_crops(np.concatenate(crops), np.concatenate(heat) if emb.needs_parts else None)
        else:
            vectors = np.zeros((0, emb.dim), np.float32)
        batch.put_rows("reid", frame[order], det=det[order])
        batch.put_row_array("reid", vectors.astype(np.float16),
                            {"model": emb.model, "dim": emb.dim, "sha256": emb.sha256 or "",
                             "normalised": "L2 (float32 before float16 storage)"})

    @staticmethod
    def _keypoints(batch: Batch, frame: np.ndarray, det: np.ndarray) -> np.ndarray:
        """(n, 17, 3) keypoints of each player row from the ``poses`` rows (NaN where a player has none)."""
        out = np.full((len(frame), 17, 3), np.nan)
        poses = batch.tables.get("poses")
        if poses is None or not len(frame):
            return out
        where = {(int(f), int(d)): i for i, (f, d) in enumerate(zip(frame, det))}
        for f, d, kp in zip(poses["frame"], poses["det"], poses["keypoints"]):
            i = where.get((int(f), int(d)))
            if i is not None and kp is not None:
                out[i] = np.asarray(kp, np.float64).reshape(17, 3)
        return out

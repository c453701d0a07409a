"""The DeepSportLab detector at inference: weights, batched forward pass, decoding, native pixels.

Frames of any size are resized to the working scale (height ``input_height`` pixels, 720 by default: the
native height of SoccerNet's 720p videos, at the top of the scales the shipped weights were trained at, 432 to
675 px; chosen on training frames, see bench/RESULTS.md "Detector working height"), padded to a multiple of 16, run through
:class:`~matchflow.models.detection.network.DeepSportLabNet` in batches (bf16 on CUDA) and decoded
(:func:`~matchflow.models.detection.decoder.decode`). :meth:`Detector.detect` returns
:class:`Detections` in the frame's native pixels (OpenCV convention); instance masks stay on the decoder's
grid, whose pixel (a, b) covers native pixel ((b * mask_stride + 0.5) / scale - 0.5, ...): ``mask_scale``
gives native pixels per mask pixel.

Weights: a path the user gives, or the default ones shipped in ``matchflow/data/deepsportlab/`` whose
SHA-256 is checked against :data:`matchflow.models.weights.REGISTRY`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from matchflow.models.detection.box_refine import BoxRefiner, box_features, load_box_refiner
from matchflow.models.detection.decoder import Decoded, DecodeParams, decode
from matchflow.models.detection.network import INPUT_MULTIPLE, DeepSportLabNet
from matchflow.models.preprocessing import to_input_tensor
from matchflow.models.weights import WeightsLoadError, fold_batchnorm, resolve_weights, sha256_file

__all__ = ["Detector", "Detections", "DEFAULT_INPUT_HEIGHT", "DEFAULT_BATCH", "load_detector_weights", "working_size",
           "load_box_refiner_weights", "detection_features"]

DEFAULT_INPUT_HEIGHT = 720
# Frames per forward pass when the caller gives none. On CPU one frame at a time is fastest per core: a 720p
# frame's stride-2 activations alone take about 90 MB in float32, and batching only adds cache misses (1 thread:
# 0.53 s per frame at batch 1, 0.70 at batch 4; bench/RESULTS.md, "Detector speed: notes"). GPUs want batches.
DEFAULT_BATCH = {"cpu": 1, "cuda": 16}


def working_size(width: int, height: int, input_height: int) -> tuple[float, tuple[int, int], tuple[int, int]]:
    """How a ``width`` x ``height`` frame enters the network: the scale factor, the resized size (w, h) and
    the padded input size (w, h), multiples of 16 (zero padding right and below)."""
    scale = input_height / height
    size = (max(int(round(width * scale)), 1), input_height)
    padded = tuple(-(-v // INPUT_MULTIPLE) * INPUT_MULTIPLE for v in size)
    return scale, size, padded  # type: ignore[return-value]


def load_detector_weights(net: DeepSportLabNet, weights: str | Path | None) -> tuple[Path, str]:
    """Load a whole-network state dict into ``net``: the file ``weights`` or, when None, the shipped default of
    the network's backbone (checksum verified). Returns the file and its SHA-256; a file that is missing,
    unreadable or made for another network raises :class:`WeightsLoadError` naming it."""
    path = resolve_weights(f"deepsportlab_{net.backbone.name}", weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:  # re-raised naming the file
        raise WeightsLoadError(f"cannot load detector weights {path}: {exc}") from exc
    return path, sha256_file(path)


def load_box_refiner_weights(weights: str | Path | None) -> tuple[BoxRefiner, Path, str]:
    """The box refiner in the file ``weights`` or, when None, the shipped one (checksum verified), with its file
    and SHA-256; :class:`WeightsLoadError` naming the file when it cannot be used."""
    path = resolve_weights("deepsportlab_box_refiner", weights)
    try:
        return load_box_refiner(path), path, sha256_file(path)
    except ValueError as exc:
        raise WeightsLoadError(str(exc)) from exc


@dataclass
class Detections:
    """What the detector found in one frame, native pixels.

    ``boxes`` (P, 4) float32 x1, y1, x2, y2; ``scores`` (P,) 0..1 descending; ``classes`` (P,) int64 into
    :data:`~matchflow.models.detection.network.PERSON_CLASSES`; ``class_probs`` (P, 3); ``keypoints``
    (P, 17, 3) COCO order x, y, score (NaN, NaN, 0 when absent); ``ball`` (3,) x, y, score or None;
    ``masks`` (h, w) int16 instance ids (0 background, i + 1 = person i) on the decoder grid, covering
    ``mask_scale`` native pixels per mask pixel; ``scale`` network pixels per native pixel.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    class_probs: np.ndarray
    keypoints: np.ndarray
    ball: np.ndarray | None
    masks: np.ndarray
    mask_scale: float
    scale: float = 1.0


def detection_features(d: Detections) -> np.ndarray:
    """The box refiner's features (:func:`~matchflow.models.detection.box_refine.box_features`) of ``d``."""
    stride = int(round(d.mask_scale * d.scale))
    return box_features(d.boxes, d.scores, d.keypoints, d.masks, stride, d.scale)


class Detector:
    """Batched DeepSportLab inference. ``weights``: state-dict file (None: the shipped default, checksum
    verified); ``device``: ``cpu`` or ``cuda``; ``params``: decoder thresholds; ``batch_size``: frames per
    forward pass (None: :data:`DEFAULT_BATCH` of the device); ``box_refiner``: the second stage that moves
    the boxes' edges from the masks and keypoints (:mod:`~matchflow.models.detection.box_refine`), None for the
    network's boxes as decoded."""

    def __init__(
        self,
        weights: str | Path | None = None,
        backbone: str = "mobilenetv2",
        device: str = "cpu",
        input_height: int = DEFAULT_INPUT_HEIGHT,
        params: DecodeParams | None = None,
        batch_size: int | None = None,
        box_refiner: BoxRefiner | None = None,
    ) -> None:
        self.net = DeepSportLabNet(backbone)
        self.weights_path, self.sha256 = load_detector_weights(self.net, weights)
        self.device = device
        # inference only: batch norm folded into the convolutions, NHWC layout (oneDNN and cuDNN's fast path);
        # together about 1.5-2x faster on CPU (bench/RESULTS.md, "Detector speed")
        fold_batchnorm(self.net.eval()).to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch stubs lack memory_format on Module.to
        self.input_height = int(input_height)
        self.params = params or DecodeParams()
        if batch_size is None:
            batch_size = DEFAULT_BATCH["cuda" if device.startswith("cuda") else "cpu"]
        self.batch_size = max(1, int(batch_size))
        self.box_refiner = box_refiner

    def _prepare(self, frames: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = frames.shape[1:3]
        scale, size, (pw, ph) = working_size(w, h, self.input_height)
        out = np.zeros((len(frames), ph, pw, 3), np.uint8)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        for i, f in enumerate(frames):
            out[i, : size[1], : size[0]] = f if scale == 1 else cv2.resize(f, size, interpolation=interp)
        return out, scale

    @torch.inference_mode()
    def detect(self, frames: np.ndarray) -> list[Detections]:
        """Detect in RGB frames (B, H, W, 3) uint8 of one size."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames (B, H, W, 3), got shape {frames.shape}")
        results: list[Detections] = []
        for start in range(0, len(frames), self.batch_size):
            work, scale = self._prepare(frames[start : start + self.batch_size])
            x = to_input_tensor(work, self.device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.device.startswith("cuda")):
                out = self.net(x, grid_stride=self.params.out_stride)  # masks need the maps on the grid only
            outputs = {k: v.float().contiguous() for k, v in out.items()}
            for d in decode(outputs, self.params, image_size=(int(x.shape[-2]), int(x.shape[-1]))):
                det = _to_native(d, scale)
                if self.box_refiner is not None and len(det.boxes):
                    det.boxes = self.box_refiner.refine(det.boxes, detection_features(det))
                results.append(det)
        return results


def _native(xy: np.ndarray, scale: float) -> np.ndarray:
    return (xy + 0.5) / scale - 0.5


def _to_native(d: Decoded, scale: float) -> Detections:
    kp = d.keypoints.copy()
    kp[..., :2] = _native(kp[..., :2], scale)
    ball = None
    if d.ball is not None:
        ball = d.ball.copy()
        ball[:2] = _native(ball[:2], scale)
    return Detections(
        boxes=(d.boxes / scale).astype(np.float32),
        scores=d.scores,
        classes=d.classes,
        class_probs=d.class_probs,
        keypoints=kp.astype(np.float32),
        ball=ball,
        masks=d.masks,
        mask_scale=d.mask_stride / scale,
        scale=scale,
    )

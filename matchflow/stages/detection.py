"""The ``detection`` stage: players (boxes, score, class), the ball, poses and player masks per frame.

One DeepSportLab network (:mod:`matchflow.models.detection.detector`) runs on the batch's frames in sub-batches of
``batch_size`` on the worker's device. Parameters (``stage_params.detection``):

- ``weights``: detector weights file (default: the shipped, checksum-verified MobileNetV2 weights);
- ``backbone``: ``mobilenetv2`` (default) or ``resnet50`` (with ``weights``);
- ``input_height`` (720, ``models.detection.detector.DEFAULT_INPUT_HEIGHT``): working height in pixels the frames are resized to;
- ``batch_size``: frames per forward pass (default: 1 on CPU, 16 on CUDA, ``models.detection.detector.DEFAULT_BATCH``);
- ``player_threshold`` (0.3), ``ball_threshold`` (0.3), ``keypoint_threshold`` (0.1): decoder thresholds;
- ``refine_boxes`` (true): move each box's edges by the second-stage box refiner, which reads the person's
  mask and keypoints (:mod:`matchflow.models.detection.box_refine`); ``box_refiner``: its file (default: the
  shipped, checksum-verified one).

Writes ``players`` rows (``det`` numbered from 0 by descending score, box in native pixels, ``score``,
``cls``), one ``ball`` row per frame whose ball scores at least the threshold, one ``poses`` row per player
(``keypoints``: 17 COCO keypoints as x, y, score; NaN x, y with score 0 when absent) and the ``masks`` array
(instance ids: ``det + 1``, 0 background) on the decoder's grid (stride 4 at the working scale); its Zarr
attributes give the scale.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from matchflow.stages.base import IMAGE, Batch, FrameStage, StageParams
from matchflow.storage.arrays import ArraySpec
from matchflow.video import VideoInfo

if TYPE_CHECKING:
    from matchflow.models.detection.detector import Detector


class DetectionParams(StageParams):
    """``stage_params.detection`` (see the module docstring). ``batch_size`` None: the detector's default for
    the device; thresholds None: the decoder's defaults."""

    weights: str | None = None
    backbone: Literal["mobilenetv2", "resnet50"] = "mobilenetv2"
    input_height: int = Field(720, ge=64)
    batch_size: int | None = Field(None, ge=1)
    player_threshold: float | None = Field(None, ge=0, le=1)
    ball_threshold: float | None = Field(None, ge=0, le=1)
    keypoint_threshold: float | None = Field(None, ge=0, le=1)
    refine_boxes: bool = True
    box_refiner: str | None = None

    @model_validator(mode="after")
    def _resnet_needs_weights(self) -> DetectionParams:
        if self.backbone == "resnet50" and not self.weights:
            raise ValueError("backbone resnet50 needs `weights` (no ResNet-50 weights ship)")
        return self

_MASK_STRIDE = 4  # decoder grid stride in working pixels


class DetectionStage(FrameStage):
    """Players, ball, poses and masks from the DeepSportLab detector (see the module docstring)."""

    name = "detection"
    Params = DetectionParams
    params: DetectionParams
    reads = (IMAGE,)
    writes = (
        "players.det", "players.x1", "players.y1", "players.x2", "players.y2", "players.score", "players.cls",
        "ball.x", "ball.y", "ball.score",
        "poses.det", "poses.keypoints",
        "arrays/masks",
    )
    version = "2"  # 2: boxes refined from the masks and keypoints
    uses_gpu = True  # the DeepSportLab network: chunk tasks go to GPU workers when the run targets GPUs

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        self.input_height = self.params.input_height
        self._detector: Detector | None = None
        self._device = "cpu"

    def setup(self, device: str) -> None:
        self._device = device

    def _get(self) -> Detector:
        if self._detector is None:
            from matchflow.models.detection.decoder import DecodeParams
            from matchflow.models.detection.detector import Detector, load_box_refiner_weights

            params = DecodeParams()
            for key in ("player_threshold", "ball_threshold", "keypoint_threshold"):
                value = getattr(self.params, key)
                if value is not None:
                    params = dataclasses.replace(params, **{key: float(value)})  # type: ignore[arg-type]  # float fields
            self._detector = Detector(
                self.params.weights, backbone=self.params.backbone,
                device=self._device, input_height=self.input_height, params=params,
                batch_size=self.params.batch_size,
                box_refiner=load_box_refiner_weights(self.params.box_refiner)[0] if self.params.refine_boxes else None,
            )
        return self._detector

    def model_checksums(self) -> dict[str, str]:
        from matchflow.models.weights import resolve_weights, sha256_file

        name = f"deepsportlab_{self.params.backbone}"
        sums = {name: sha256_file(resolve_weights(name, self.params.weights))}
        if self.params.refine_boxes:
            sums["deepsportlab_box_refiner"] = sha256_file(resolve_weights("deepsportlab_box_refiner",
                                                                           self.params.box_refiner))
        return sums

    def mask_shape(self, video: VideoInfo) -> tuple[int, int]:
        """(rows, columns) of the decoder's grid for frames of this video."""
        from matchflow.models.detection.detector import working_size

        _, _, (pw, ph) = working_size(video.width, video.height, self.input_height)
        return math.ceil(ph / _MASK_STRIDE), math.ceil(pw / _MASK_STRIDE)

    def _mask_attrs(self, video: VideoInfo) -> dict[str, Any]:
        """How to read the masks grid: the Zarr attributes, and what later stages of a batch get with it."""
        r = self.input_height / video.height
        return {
            "ids": "players.det + 1; 0 background",
            "native_pixels_per_mask_pixel": _MASK_STRIDE / r,
            "working_scale": r,
            "mask_stride": _MASK_STRIDE,
            "pixel": "mask pixel (row a, column b) is native pixel x = (4 b + 0.5) / working_scale - 0.5, "
                     "y = (4 a + 0.5) / working_scale - 0.5",
        }

    def array_specs(self, video: VideoInfo) -> dict[str, ArraySpec]:
        return {"masks": ArraySpec(self.mask_shape(video), "int16", 0, self._mask_attrs(video))}

    def process(self, batch: Batch) -> None:
        from matchflow.models.detection.network import PERSON_CLASSES

        dets = self._get().detect(batch.image)
        cls: list[str]
        frame, det, boxes, scores, cls, kps = [], [], [], [], [], []
        bframe, bx, by, bs = [], [], [], []
        shape = self.mask_shape(batch.ctx.video)
        masks = np.zeros((len(batch), *shape), np.int16)
        for i, d in enumerate(dets):
            n = len(d.scores)
            frame.append(np.full(n, batch.frame[i], np.int32))
            det.append(np.arange(n, dtype=np.int16))
            boxes.append(d.boxes)
            scores.append(d.scores)
            cls.extend(PERSON_CLASSES[int(c)] for c in d.classes)
            kps.append(d.keypoints.reshape(n, 17 * 3))  # (0, 51) for a frame without people
            h, w = min(shape[0], d.masks.shape[0]), min(shape[1], d.masks.shape[1])
            masks[i, :h, :w] = d.masks[:h, :w]
            if d.ball is not None:
                bframe.append(batch.frame[i])
                bx.append(d.ball[0])
                by.append(d.ball[1])
                bs.append(d.ball[2])
        frames = np.concatenate(frame) if frame else np.zeros(0, np.int32)
        b = np.concatenate(boxes).reshape(-1, 4) if boxes else np.zeros((0, 4), np.float32)
        dets_ = np.concatenate(det) if det else np.zeros(0, np.int16)
        batch.put_rows(
            "players", frames, det=dets_, x1=b[:, 0], y1=b[:, 1], x2=b[:, 2], y2=b[:, 3],
            score=np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32),
            cls=np.asarray(cls, dtype=object),
        )
        k = np.concatenate(kps).astype(np.float32) if kps else np.zeros((0, 51), np.float32)
        batch.put_rows("poses", frames, det=dets_, keypoints=[row.tolist() for row in k])
        batch.put_rows(
            "ball", np.asarray(bframe, np.int32), x=np.asarray(bx, np.float32), y=np.asarray(by, np.float32),
            score=np.asarray(bs, np.float32),
        )
        batch.put_array("masks", masks, attrs=self._mask_attrs(batch.ctx.video))

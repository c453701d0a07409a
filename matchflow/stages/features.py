"""The ``features`` stage: frame feature vectors of the top views from a frozen ImageNet backbone.

Reads ``arrays/topview_cc`` (or ``arrays/topview_bc`` with ``view: bc``) from the ``topview`` stage and
writes ``arrays/features_<backbone>`` (T, D) float16 (penultimate layer, see
:mod:`matchflow.models.representations.features`). Parameters (``stage_params.features``):

- ``backbone``: ``mobilenetv2`` (default, 1280-d, packaged checksum-verified weights), ``resnet34`` (512-d)
  or ``efficientnet_b4`` (1792-d); the last two need ``weights``;
- ``weights``: a torchvision state-dict file for the backbone (checked to exist before any work);
- ``view``: ``cc`` (default, the colour composition, the paper's best) or ``bc``;
- ``batch_size`` (32): top views per forward pass; ``amp`` (``bf16``): autocast dtype on CUDA.

The array written depends on ``backbone``: ``writes`` is set per instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from matchflow.stages.base import Batch, FrameStage, StageParams
from matchflow.storage.arrays import ArraySpec
from matchflow.video import VideoInfo

if TYPE_CHECKING:
    from matchflow.models.representations.features import FeatureExtractor


class FeaturesParams(StageParams):
    """``stage_params.features`` (see the module docstring)."""

    backbone: Literal["mobilenetv2", "resnet34", "efficientnet_b4"] = "mobilenetv2"
    weights: str | None = None
    view: Literal["cc", "bc"] = "cc"
    batch_size: int = Field(32, ge=1)
    amp: Literal["bf16", "fp16"] = "bf16"


class FeaturesStage(FrameStage):
    """Top views -> frozen ImageNet backbone -> (T, D) float16 features; see the module docstring."""

    name = "features"
    Params = FeaturesParams
    params: FeaturesParams
    reads = ("arrays/topview_cc",)
    writes = ("arrays/features_mobilenetv2",)
    version = "1"
    uses_gpu = True  # a CNN over every top view: chunk tasks go to GPU workers when the run targets GPUs

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        from matchflow.models.representations.features import (
            FEATURE_DIMS,
            check_feature_weights,
        )

        self.backbone = self.params.backbone
        if self.backbone not in FEATURE_DIMS:
            raise ValueError(
                f"stage_params.features.backbone = {self.backbone!r}; expected one of {sorted(FEATURE_DIMS)}")
        self.view = self.params.view
        self.amp = self.params.amp
        self.batch_size = self.params.batch_size
        self.weights = self.params.weights
        check_feature_weights(self.backbone, self.weights)  # a clear error before any work
        self.dim = FEATURE_DIMS[self.backbone]
        self.array = f"features_{self.backbone}"
        self.reads = (f"arrays/topview_{self.view}",)
        self.writes = (f"arrays/{self.array}",)
        self._device = "cpu"
        self._extractor: FeatureExtractor | None = None
        self._sha256: str | None = None

    def setup(self, device: str) -> None:
        self._device = device

    def _get(self) -> FeatureExtractor:
        if self._extractor is None:
            from matchflow.models.representations.features import FeatureExtractor

            self._extractor = FeatureExtractor(self.backbone, self.weights, self._device, self.batch_size, self.amp)
        return self._extractor

    def model_checksums(self) -> dict[str, str]:
        if self._sha256 is None:
            from matchflow.models.representations.features import (
                resolve_feature_weights,
            )
            from matchflow.models.weights import sha256_file

            self._sha256 = sha256_file(resolve_feature_weights(self.backbone, self.weights))
        return {self.array: self._sha256}

    def array_specs(self, video: VideoInfo) -> dict[str, ArraySpec]:
        from matchflow.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD

        return {self.array: ArraySpec((self.dim,), "float16", 0, {
            "backbone": self.backbone,
            "dim": self.dim,
            "layer": "penultimate (global average pooling, classifier removed)",
            "input": f"topview_{self.view}",
            "preprocessing": f"RGB / 255 (binary channels: 0/1 -> 0/255 first), ImageNet mean {list(IMAGENET_MEAN)} "
                             f"std {list(IMAGENET_STD)}, 224x224",
            "weights_sha256": self.model_checksums()[self.array],
            "precision": f"fp32 on CPU, {self.amp} autocast on CUDA; stored float16",
        })}

    def process(self, batch: Batch) -> None:
        views = batch.arrays[f"topview_{self.view}"]
        feats = self._get()(views)
        batch.put_array(self.array, feats.astype(np.float16, copy=False))

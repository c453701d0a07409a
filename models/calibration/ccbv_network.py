"""The three networks of CCBV-style calibration (zone segmentation, template retrieval, homography refinement).

- :class:`ZoneUNet`: a small U-Net, RGB frame at :data:`NET_SIZE` -> :data:`N_ZONES` zone logits per pixel.
- :class:`ZoneEncoder`: the siamese branch, a zone map (one-hot, or the U-Net's softmax) at
  :data:`TEMPLATE_SIZE` -> an L2-normalised embedding; the nearest template embedding gives a first homography.
- :class:`HomographyRegressor`: a spatial-transformer-style regressor that takes an observed zone map and a
  template's zone map (both at :data:`TEMPLATE_SIZE`) and regresses the homography from the template image to
  the observed image as the displacement of the 4 image corners (8 numbers, in units of the image width for x
  and the image height for y). Leaky ReLU activations; the last layer starts at zero (identity).

Helpers convert between the corner parameterisation and 3x3 homographies (:func:`corners_to_homography`,
:func:`homography_to_corners`) and build network inputs from label maps (:func:`one_hot`).
Sizes are (width, height) pixels; tensors are (N, C, H, W).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from matchflow.models.geometry.zones import N_ZONES

__all__ = [
    "NET_SIZE",
    "TEMPLATE_SIZE",
    "EMBED_DIM",
    "ZoneUNet",
    "ZoneEncoder",
    "HomographyRegressor",
    "one_hot",
    "image_corners",
    "corners_to_homography",
    "homography_to_corners",
    "count_parameters",
]

NET_SIZE = (256, 144)  # U-Net input and output (width, height)
TEMPLATE_SIZE = (128, 72)  # zone maps seen by the siamese encoder and the regressor
EMBED_DIM = 64

_MEAN = (0.45, 0.45, 0.45)
_STD = (0.25, 0.25, 0.25)


def _conv_relu(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), nn.ReLU(inplace=True))


class ZoneUNet(nn.Module):
    """U-Net for zone segmentation. Input: (N, 3, H, W) RGB in [0, 1] (trained at :data:`NET_SIZE`).
    Output: (N, n_zones, H, W) logits.

    A stride-2 stem sees every input pixel (thin lines included) and the U-Net proper runs at half
    resolution: three poolings below it (16x16 input pixels per bottleneck cell) and a global-context branch
    at the bottleneck (the mean feature, broadcast back) let every pixel see the whole frame, which the
    left/right labels need. The logits are upsampled bilinearly to the input size.
    """

    mean: torch.Tensor  # buffers registered in __init__
    std: torch.Tensor

    def __init__(self, n_zones: int = N_ZONES, widths: tuple[int, ...] = (16, 16, 32, 48, 64)) -> None:
        super().__init__()
        self.n_zones = int(n_zones)
        self.widths = tuple(int(w) for w in widths)
        w = self.widths
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = _conv_relu(3, w[0], 2)
        self.enc = nn.ModuleList()
        cin = w[0]
        for c in w[1:-1]:
            self.enc.append(nn.Sequential(_conv_relu(cin, c), _conv_relu(c, c)))
            cin = c
        self.bottom = nn.Sequential(_conv_relu(cin, w[-1]), _conv_relu(w[-1], w[-1]))
        self.context = _conv_relu(2 * w[-1], w[-1], 1, 1)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        deeper = w[-1]
        for c in reversed(w[1:-1]):
            self.up.append(_conv_relu(deeper, c, 1, 1))
            self.dec.append(_conv_relu(2 * c, c))
            deeper = c
        self.head = nn.Conv2d(deeper, self.n_zones, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem((x - self.mean) / self.std)
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2, ceil_mode=True)
        x = self.bottom(x)
        g = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
        x = self.context(torch.cat([x, g], dim=1))
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = F.interpolate(up(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = dec(torch.cat([x, skip], dim=1))
        return F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)


def _conv_lrelu(cin: int, cout: int, stride: int = 1, slope: float = 0.1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(slope, inplace=True))


class ZoneEncoder(nn.Module):
    """Siamese branch: (N, n_zones, 72, 128) zone probabilities -> (N, dim) unit vectors. The last feature map
    is flattened (not pooled), so where each zone lies in the image shapes the embedding."""

    def __init__(self, n_zones: int = N_ZONES, dim: int = EMBED_DIM, width: int = 16) -> None:
        super().__init__()
        self.n_zones, self.dim, self.width = int(n_zones), int(dim), int(width)
        c = self.width
        self.features = nn.Sequential(
            _conv_lrelu(self.n_zones + 2, c, 2),  # 36 x 64
            _conv_lrelu(c, 2 * c, 2),  # 18 x 32
            _conv_lrelu(2 * c, 4 * c, 2),  # 9 x 16
            _conv_lrelu(4 * c, 4 * c, 2),  # 5 x 8
            nn.AdaptiveAvgPool2d((5, 8)),
        )
        self.fc = nn.Sequential(nn.Linear(4 * c * 40, 128), nn.LeakyReLU(0.1, inplace=True), nn.Linear(128, self.dim))

    def forward(self, zones: torch.Tensor) -> torch.Tensor:
        x = self.features(_with_coords(zones))
        return F.normalize(self.fc(x.flatten(1)), dim=1)


class HomographyRegressor(nn.Module):
    """Regression network of the refinement: observed and template zone maps, each (N, n_zones, 72, 128), ->
    (N, 8) displacements of the image corners (top-left, top-right, bottom-right, bottom-left; x then y;
    in image widths and heights) that map the template image onto the observed one. Convolutions with batch
    normalisation and leaky ReLU, then two fully connected layers; the last one starts at zero (identity)."""

    def __init__(self, n_zones: int = N_ZONES, width: int = 32, slope: float = 0.1) -> None:
        super().__init__()
        self.n_zones, self.width, self.slope = int(n_zones), int(width), float(slope)
        c = self.width

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(slope, inplace=True)
            )

        self.features = nn.Sequential(
            block(2 * self.n_zones + 2, c, 2),  # 36 x 64
            block(c, 2 * c, 2),  # 18 x 32
            block(2 * c, 3 * c, 2),  # 9 x 16
            block(3 * c, 4 * c, 2),  # 5 x 8
            block(4 * c, 2 * c, 1),
            nn.AdaptiveAvgPool2d((5, 8)),
        )
        self.fc = nn.Sequential(nn.Linear(2 * c * 40, 128), nn.LeakyReLU(slope, inplace=True), nn.Linear(128, 8))
        nn.init.zeros_(cast(nn.Linear, self.fc[-1]).weight)
        nn.init.zeros_(cast(nn.Linear, self.fc[-1]).bias)

    def forward(self, observed: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
        x = self.features(_with_coords(torch.cat([observed, template], dim=1)))
        return self.fc(x.flatten(1))


def _with_coords(x: torch.Tensor) -> torch.Tensor:
    """``x`` with two more channels: the pixel's x and y in [-1, 1]."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([x, xs, ys], dim=1)


# ------------------------------------------------------------------------------------------------ helpers
def one_hot(zones: np.ndarray | torch.Tensor, n_zones: int = N_ZONES) -> torch.Tensor:
    """(N, H, W) or (H, W) integer labels -> (N, n_zones, H, W) float32 one-hot."""
    z = torch.as_tensor(np.asarray(zones) if not isinstance(zones, torch.Tensor) else zones).long()
    if z.dim() == 2:
        z = z[None]
    return F.one_hot(z.clamp(0, n_zones - 1), n_zones).permute(0, 3, 1, 2).float()


def image_corners(size: tuple[float, float]) -> np.ndarray:
    """(4, 2) corners of an image of ``size`` = (width, height): top-left, top-right, bottom-right,
    bottom-left (the outer pixel edges, so scaling an image scales its corners)."""
    w, h = float(size[0]), float(size[1])
    return np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])


def corners_to_homography(displacement: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    """3x3 image-to-image homography that moves the image corners by ``displacement`` (8,) (x in image
    widths, y in image heights, corners in :func:`image_corners` order)."""
    d = np.asarray(displacement, dtype=float).reshape(4, 2) * np.array([float(size[0]), float(size[1])])
    src = image_corners(size)
    return _four_point(src, src + d)


def homography_to_corners(h_image_to_image: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    """The 8 corner displacements (image widths and heights) of a 3x3 image-to-image homography; NaN where a
    corner maps to infinity."""
    src = image_corners(size)
    q = np.column_stack([src, np.ones(4)]) @ np.asarray(h_image_to_image, dtype=float).T
    with np.errstate(divide="ignore", invalid="ignore"):
        dst = q[:, :2] / q[:, 2:3]
    return ((dst - src) / np.array([float(size[0]), float(size[1])])).ravel()


def _four_point(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Homography (3x3, h[2, 2] = 1) mapping 4 points ``src`` onto ``dst`` (direct linear solve)."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    try:
        sol = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.eye(3)
    return np.append(sol, 1.0).reshape(3, 3)


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))

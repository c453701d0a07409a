"""How RGB frames enter the ImageNet-initialised networks: the normalisation constants and the tensor layout."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "to_input_tensor"]

#: Per-channel mean and standard deviation (RGB, on values scaled to 0..1) of the ImageNet weights.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_input_tensor(images: np.ndarray | list[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 frames (N, H, W, 3) -> normalised float32 tensor (N, 3, H, W) on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(list(images)))).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device)[None, :, None, None]
    std = torch.as_tensor(IMAGENET_STD, dtype=torch.float32, device=x.device)[None, :, None, None]
    return (x - mean) / std

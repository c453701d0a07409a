"""Training of the DeepSportLab detector on real labelled frames and synthetic renders.

Data: Roboflow soccer and basketball frames (boxes, person classes, ball; no masks or joints) and synthetic
renders with instance masks and COCO joints (:mod:`matchflow.synth.detection`), mixed per batch in the
shares of :attr:`DetectorTrainConfig.mix`. Every frame is brought to the network's working scale (height
:attr:`DetectorTrainConfig.input_height` pixels, the scale the detection stage infers at), then randomly
rescaled (``scale_jitter``), cropped (``crop`` pixels square), flipped (left and right joints swapped) and
colour-jittered. Targets and losses: :mod:`matchflow.training.detection.encoder`.

Reproducible and resumable: step ``s`` draws its batch from a generator seeded by (seed, s) and sets torch's
seed the same way, so a run resumed from a checkpoint sees the same batches as one that never stopped. A
checkpoint (model and optimizer state, step, configuration) is written every ``checkpoint_every`` steps and
read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from matchflow.models.detection.network import COCO_KEYPOINTS, INPUT_MULTIPLE, DeepSportLabNet
from matchflow.models.preprocessing import to_input_tensor
from matchflow.models.weights import find_packaged_mobilenetv2, sha256_file
from matchflow.training.detection.data import DetectionSample
from matchflow.training.detection.encoder import build_targets, collate_targets, deepsportlab_loss

__all__ = [
    "DetectorTrainConfig",
    "TrainingData",
    "working_scale",
    "augment_sample",
    "train_steps",
    "latest_checkpoint",
    "save_checkpoint",
]

_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])  # COCO left <-> right
assert len(_FLIP) == len(COCO_KEYPOINTS)
_CACHE_SCALE = 1.25  # frames are cached at this multiple of the working scale (largest jitter)


@dataclass
class DetectorTrainConfig:
    """Hyper-parameters of a detector training run."""

    steps: int = 3000
    batch: int = 8
    crop: int = 384  # pixels, square, multiple of 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    seed: int = 0
    backbone: str = "mobilenetv2"
    input_height: int = 540  # working scale: frames are resized to this height (pixels)
    scale_jitter: tuple[float, float] = (0.8, 1.25)
    mix: dict[str, float] = field(default_factory=lambda: {"soccer": 0.5, "basketball": 0.2, "synthetic": 0.3})
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    # backbone parts kept at their ImageNet weights (batch-norm statistics included): "stem4" freezes the
    # stride-2 and stride-4 blocks, the costliest to train at full resolution; "" trains everything
    freeze: str = "stem4"
    # weights of the person classes (player, goalkeeper, referee) in the class cross-entropy: goalkeepers and
    # referees are a few per frame against twenty players
    class_weights: tuple[float, float, float] = (1.0, 4.0, 3.0)

    def __post_init__(self) -> None:
        if self.crop % INPUT_MULTIPLE:
            raise ValueError(f"crop must be a multiple of {INPUT_MULTIPLE}, got {self.crop}")
        if not self.mix or min(self.mix.values()) < 0 or sum(self.mix.values()) <= 0:
            raise ValueError(f"mix needs non-negative shares that sum above 0, got {self.mix}")
        self.scale_jitter = tuple(self.scale_jitter)  # type: ignore[assignment]
        self.class_weights = tuple(float(w) for w in self.class_weights)  # type: ignore[assignment]
        if len(self.class_weights) != 3 or min(self.class_weights) <= 0:
            raise ValueError(f"class_weights needs 3 positive weights, got {self.class_weights}")
        if self.freeze not in ("", "stem4"):
            raise ValueError(f"freeze must be '' or 'stem4', got {self.freeze!r}")


def frozen_modules(net: DeepSportLabNet, cfg: DetectorTrainConfig) -> list[torch.nn.Module]:
    """The backbone modules that ``cfg.freeze`` keeps fixed."""
    return [net.backbone.stem, net.backbone.stage4] if cfg.freeze == "stem4" else []


def working_scale(height: int, input_height: int) -> float:
    """Factor that brings a frame of ``height`` pixels to the working scale."""
    return input_height / float(height)


def _resize_sample(s: DetectionSample, f: float) -> DetectionSample:
    h, w = s.image.shape[:2]
    size = (max(int(round(w * f)), 1), max(int(round(h * f)), 1))
    fx, fy = size[0] / w, size[1] / h
    image = cv2.resize(s.image, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    inst = None
    if s.instances is not None:
        inst = cv2.resize(s.instances.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints.copy()
        kp[..., 0] = (kp[..., 0] + 0.5) * fx - 0.5
        kp[..., 1] = (kp[..., 1] + 0.5) * fy - 0.5
    boxes = s.boxes * np.array([fx, fy, fx, fy], np.float32)
    balls = s.balls.copy()
    balls[:, 0] = (balls[:, 0] + 0.5) * fx - 0.5
    balls[:, 1] = (balls[:, 1] + 0.5) * fy - 0.5
    balls[:, 2] *= 0.5 * (fx + fy)
    return DetectionSample(image, boxes, s.classes.copy(), balls, kp, inst, s.name)


class TrainingData:
    """Labelled frames of several sources, cached in memory at :data:`_CACHE_SCALE` times the working scale.

    ``sources`` maps a source name (a key of the configuration's ``mix``) to an iterable of samples."""

    def __init__(self, sources: Mapping[str, Iterable[DetectionSample]], input_height: int,
                 progress: Callable[[str], None] | None = None) -> None:
        self.samples: dict[str, list[DetectionSample]] = {}
        self.input_height = input_height
        for name, items in sources.items():
            cached = []
            for s in items:
                f = working_scale(s.image.shape[0], input_height) * _CACHE_SCALE
                cached.append(_resize_sample(s, min(f, 1.0)) if f < 1.0 else s)
            if not cached:
                raise ValueError(f"training source {name!r} has no frames")
            self.samples[name] = cached
            if progress:
                progress(f"{name}: {len(cached)} frames")

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.samples.items()}

    def batch(self, rng: np.random.Generator, cfg: DetectorTrainConfig) -> list[DetectionSample]:
        names = [n for n in cfg.mix if cfg.mix[n] > 0 and n in self.samples]
        if not names:
            raise ValueError(f"no training source among {sorted(self.samples)} has a share in mix {cfg.mix}")
        p = np.array([cfg.mix[n] for n in names], float)
        out = []
        for src in rng.choice(len(names), size=cfg.batch, p=p / p.sum()):
            pool = self.samples[names[src]]
            s = pool[int(rng.integers(len(pool)))]
            base = self.input_height / s.image.shape[0]  # cached frames are above the working scale
            out.append(augment_sample(rng, s, base, cfg))
        return out


def _crop(s: DetectionSample, x0: int, y0: int, size: int) -> DetectionSample:
    h, w = s.image.shape[:2]
    image = np.zeros((size, size, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
    image[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = s.image[sy0:sy1, sx0:sx1]
    shift = np.array([x0, y0, x0, y0], np.float32)
    boxes = s.boxes - shift
    clipped = np.clip(boxes, 0, size)
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-3), axis=1)
    carea = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
    inst = None
    if s.instances is not None:
        inst = np.zeros((size, size), np.int32)
        inst[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = s.instances[sy0:sy1, sx0:sx1]
        keep = carea > 0  # masks are labelled: keep every person still in the crop, renumber the map
    else:
        keep = (carea >= 0.3 * area) & (clipped[:, 3] - clipped[:, 1] >= 4)
    lut = np.zeros(len(boxes) + 2, np.int32)
    lut[1:len(boxes) + 1][keep] = np.arange(1, int(keep.sum()) + 1)
    lut[-1] = -1
    if inst is not None:
        inst = np.where(inst > 0, lut[np.clip(inst, 0, len(boxes))], np.where(inst < 0, -1, 0))
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints[keep].copy()
        kp[..., 0] -= x0
        kp[..., 1] -= y0
        out = (kp[..., 0] < 0) | (kp[..., 1] < 0) | (kp[..., 0] > size - 1) | (kp[..., 1] > size - 1)
        kp[..., 2][out] = 0
    balls = s.balls.copy()
    balls[:, 0] -= x0
    balls[:, 1] -= y0
    balls = balls[(balls[:, 0] >= 0) & (balls[:, 1] >= 0) & (balls[:, 0] < size) & (balls[:, 1] < size)]
    return DetectionSample(image, clipped[keep], s.classes[keep], balls, kp, inst, s.name)


def _flip(s: DetectionSample) -> DetectionSample:
    w = s.image.shape[1]
    boxes = s.boxes.copy()
    boxes[:, [0, 2]] = w - s.boxes[:, [2, 0]]
    balls = s.balls.copy()
    balls[:, 0] = w - 1 - balls[:, 0]
    kp = None
    if s.keypoints is not None:
        kp = s.keypoints[:, _FLIP].copy()
        kp[..., 0] = w - 1 - kp[..., 0]
    inst = None if s.instances is None else s.instances[:, ::-1].copy()
    return DetectionSample(s.image[:, ::-1].copy(), boxes, s.classes, balls, kp, inst, s.name)


def _colour(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.7, 1.3)  # saturation
    x = (x - x.mean()) * rng.uniform(0.75, 1.25) + x.mean() * rng.uniform(0.75, 1.25)  # contrast, brightness
    return np.clip(x, 0, 255).astype(np.uint8)


def augment_sample(rng: np.random.Generator, s: DetectionSample, base_scale: float,
                   cfg: DetectorTrainConfig) -> DetectionSample:
    """Rescale ``s`` to ``base_scale`` times a log-uniform jitter, crop ``cfg.crop`` square (biased toward
    labelled objects), flip half the time and jitter colours."""
    lo, hi = cfg.scale_jitter
    f = base_scale * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    s = _resize_sample(s, f)
    h, w = s.image.shape[:2]
    c = cfg.crop
    if len(s.boxes) and rng.random() < 0.8:  # centre the crop near an object
        pts = np.concatenate([(s.boxes[:, :2] + s.boxes[:, 2:]) / 2, s.balls[:, :2]])
        cx, cy = pts[int(rng.integers(len(pts)))] + rng.uniform(-c / 3, c / 3, 2)
        x0, y0 = int(round(cx - c / 2)), int(round(cy - c / 2))
    else:
        x0, y0 = int(rng.integers(min(0, w - c), max(w - c, 0) + 1)), int(rng.integers(min(0, h - c), max(h - c, 0) + 1))
    x0 = int(np.clip(x0, min(0, w - c), max(w - c, 0)))
    y0 = int(np.clip(y0, min(0, h - c), max(h - c, 0)))
    s = _crop(s, x0, y0, c)
    if rng.random() < 0.5:
        s = _flip(s)
    s.image = _colour(rng, s.image)
    return s


def _lr_factor(step: int, cfg: DetectorTrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for p in out.glob("checkpoint_*.pt"):
        try:
            found.append((int(p.stem.split("_")[1]), p))
        except (IndexError, ValueError):
            continue
    return sorted(found)


def latest_checkpoint(out: str | Path) -> tuple[int, Path] | None:
    found = checkpoints(Path(out))
    return found[-1] if found else None


def save_checkpoint(out: Path, step: int, net: torch.nn.Module, opt: torch.optim.Optimizer,
                    cfg: DetectorTrainConfig, keep: int) -> Path:
    """Write ``checkpoint_<step>.pt`` atomically and drop all but the ``keep`` newest."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"checkpoint_{step:07d}.pt"
    tmp = path.with_suffix(".tmp")
    state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
             "config": json.dumps(asdict(cfg))}
    torch.save(state, tmp)
    tmp.replace(path)
    for _, old in checkpoints(out)[:-max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def build_network(cfg: DetectorTrainConfig, backbone_weights: str | Path | None = None) -> DeepSportLabNet:
    """The network to train; the MobileNetV2 default starts from the ImageNet weights an installed package
    ships when no path is given."""
    if backbone_weights is None and cfg.backbone == "mobilenetv2":
        backbone_weights = find_packaged_mobilenetv2()
    return DeepSportLabNet(cfg.backbone, backbone_weights)


def train_steps(
    net: DeepSportLabNet,
    data: TrainingData,
    cfg: DetectorTrainConfig,
    out: str | Path,
    until: int,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Train from the latest checkpoint in ``out`` (or from scratch) up to step ``until`` (at most
    ``cfg.steps``), writing checkpoints on the way. Returns {"step", "loss" (mean of the last 20 steps),
    "parts", "seconds", "images_per_second"}."""
    out = Path(out)
    net.to(device).train()
    for m in frozen_modules(net, cfg):
        m.eval()  # keeps the batch-norm statistics
        for p in m.parameters():
            p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    start = 0
    last = latest_checkpoint(out)
    if last is not None:
        state = torch.load(last[1], map_location=device, weights_only=True)
        saved = json.loads(state["config"])
        if saved.get("seed") != cfg.seed:
            raise ValueError(f"{last[1]}: checkpoint of seed {saved.get('seed')}, this run has seed {cfg.seed}")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        if progress:
            progress(f"resumed from {last[1].name} (step {start})")
    until = min(until, cfg.steps)
    use_bf16 = device.startswith("cuda")
    losses: list[float] = []
    parts_sum: dict[str, float] = {}
    t0 = time.perf_counter()
    seen = 0
    for step in range(start, until):
        rng = np.random.default_rng([cfg.seed, step])
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        samples = data.batch(rng, cfg)
        x = to_input_tensor([s.image for s in samples], device)
        tg = collate_targets([build_targets(s) for s in samples], device)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * _lr_factor(step, cfg)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_bf16):
            outputs = net(x)
        loss, parts = deepsportlab_loss(outputs, tg, class_weights=cfg.class_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        seen += len(samples)
        losses.append(float(loss.detach()))
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + v
        done = step + 1
        if progress and (done % 10 == 0 or done == until):
            rate = seen / (time.perf_counter() - t0)
            progress(f"step {done}/{cfg.steps} loss {np.mean(losses[-10:]):.3f} "
                     f"lr {cfg.lr * _lr_factor(step, cfg):.2e} {rate:.1f} crops/s")
        if done % cfg.checkpoint_every == 0 or done == until:
            save_checkpoint(out, done, net, opt, cfg, cfg.keep_checkpoints)
    n = max(until - start, 1)
    seconds = time.perf_counter() - t0
    return {
        "step": max(until, start),
        "loss": float(np.mean(losses[-20:])) if losses else None,
        "parts": {k: v / n for k, v in parts_sum.items()},
        "seconds": seconds,
        "images_per_second": seen / seconds if seconds > 0 else None,
    }


def export_weights(net: DeepSportLabNet, path: str | Path) -> str:
    """Write the network's state dict (float32) to ``path``; returns its SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({k: v.detach().cpu().float() if v.is_floating_point() else v.cpu() for k, v in net.state_dict().items()}, tmp)
    tmp.replace(path)
    return sha256_file(path)

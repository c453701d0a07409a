"""Training the two-stream re-identification network: seeded P x K batches scoped by action, triplet loss with
batch-hard mining (pytorch-metric-learning) on the embedding and on each layer-wise head, identity
cross-entropy behind a batch norm, AdamW with a warm-up and a cosine decay, bf16 on CUDA; resumable checkpoints.

A batch takes ``identities`` identities, drawn action by action (so teammates of one kit meet as negatives), and
``per_identity`` crops of each; step ``s`` draws with ``np.random.default_rng([seed, s])``, so a resumed run sees
the batches it would have seen.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from matchflow.models.preprocessing import to_input_tensor
from matchflow.models.reid.network import ReidOutput, TwoStreamConfig, TwoStreamReID
from matchflow.training.reid.data import ReidSet

__all__ = ["ReidTrainConfig", "train_reid_steps", "latest_checkpoint", "build_network", "fit_set", "sample_batch"]

# COCO keypoint channels that swap under a horizontal flip (left <-> right)
_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


@dataclass
class ReidTrainConfig:
    """What a training run is (saved in each checkpoint and in ``training.json``)."""

    steps: int = 3000
    identities: int = 16  # P
    per_identity: int = 4  # K
    lr: float = 3e-4
    weight_decay: float = 5e-4
    warmup: int = 200
    margin: float = 0.3
    layerwise_weight: float = 0.5
    id_weight: float = 1.0
    backbone: str = "resnet18"
    input_size: tuple[int, int] = (128, 64)
    dim: int = 512
    seed: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.steps < 1 or self.identities < 2 or self.per_identity < 2:
            raise ValueError("steps >= 1, identities >= 2 and per_identity >= 2 (triplets need positives and negatives)")


def fit_set(data: ReidSet, input_size: tuple[int, int]) -> ReidSet:
    """``data`` with its crops resized to ``input_size`` (h, w) and its part maps average-pooled to match."""
    h, w = input_size
    if data.crops.shape[1:3] == (h, w):
        return data
    interp = cv2.INTER_AREA if data.crops.shape[1] > h else cv2.INTER_LINEAR
    crops = np.stack([cv2.resize(c, (w, h), interpolation=interp) for c in data.crops]) if len(data) else \
        np.zeros((0, h, w, 3), np.uint8)
    mh, mw = h // 16, w // 16
    heat = data.heatmaps.astype(np.float32)
    fy, fx = heat.shape[2] // mh, heat.shape[3] // mw
    if fy >= 1 and fx >= 1 and heat.shape[2] == mh * fy and heat.shape[3] == mw * fx:
        heat = heat.reshape(len(heat), 17, mh, fy, mw, fx).max(axis=(3, 5))
    else:
        heat = np.stack([[cv2.resize(m, (mw, mh)) for m in maps] for maps in heat]) if len(heat) else \
            np.zeros((0, 17, mh, mw), np.float32)
    return ReidSet(crops, heat.astype(np.float16), data.identity, data.action, data.view, data.team, data.query,
                   data.source)


def build_network(cfg: ReidTrainConfig, num_classes: int) -> TwoStreamReID:
    return TwoStreamReID(TwoStreamConfig(backbone=cfg.backbone, input_size=cfg.input_size, dim=cfg.dim,  # type: ignore[arg-type]
                                         num_classes=num_classes, seed=cfg.seed))


def sample_batch(data: ReidSet, rng: np.random.Generator, p: int, k: int) -> np.ndarray:
    """Indices of a P x K batch: identities with at least two crops, drawn action by action."""
    ids, counts = np.unique(data.identity, return_counts=True)
    usable = set(ids[counts >= 2].tolist())
    by_action: dict[int, list[int]] = {}
    for i, a in zip(*np.unique(np.stack([data.identity, data.action]), axis=1)):
        if int(i) in usable:
            by_action.setdefault(int(a), []).append(int(i))
    actions = [a for a, v in by_action.items() if len(v) >= 2]
    if not actions:
        raise ValueError(f"{data.source}: no action holds two identities with two crops each; nothing to train on")
    chosen: list[int] = []
    for a in rng.permutation(actions):
        pool = [i for i in by_action[int(a)] if i not in chosen]
        chosen += rng.permutation(pool)[: p - len(chosen)].tolist()
        if len(chosen) >= p:
            break
    out = []
    for ident in chosen:
        members = np.flatnonzero(data.identity == ident)
        out += rng.choice(members, k, replace=len(members) < k).tolist()
    return np.asarray(out)


def _augment(crops: np.ndarray, heat: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal flips (part maps flipped and left/right swapped), brightness and contrast jitter, random erasing."""
    crops = crops.astype(np.float32)
    heat = heat.astype(np.float32).copy()
    n, h, w = crops.shape[:3]
    flip = rng.random(n) < 0.5
    crops[flip] = crops[flip, :, ::-1]
    heat[flip] = heat[flip][:, _FLIP, :, ::-1]
    gain = rng.uniform(0.75, 1.25, (n, 1, 1, 1))
    bias = rng.uniform(-20, 20, (n, 1, 1, 1))
    mean = crops.mean(axis=(1, 2, 3), keepdims=True)
    crops = (crops - mean) * rng.uniform(0.8, 1.2, (n, 1, 1, 1)) + mean
    crops = np.clip(crops * gain + bias, 0, 255)
    for i in np.flatnonzero(rng.random(n) < 0.3):  # random erasing
        eh, ew = int(h * rng.uniform(0.1, 0.35)), int(w * rng.uniform(0.1, 0.35))
        y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
        crops[i, y:y + eh, x:x + ew] = rng.uniform(0, 255, 3)
    return crops.astype(np.uint8), heat


def checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint_*.pt"))


def latest_checkpoint(out: Path) -> Path | None:
    found = checkpoints(out)
    return found[-1] if found else None


def _save(out: Path, step: int, net: TwoStreamReID, opt: torch.optim.Optimizer, cfg: ReidTrainConfig) -> Path:
    path = out / f"checkpoint_{step:07d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "config": json.dumps(asdict(cfg))}, tmp)
    tmp.replace(path)
    for old in checkpoints(out)[:-cfg.keep_checkpoints]:
        old.unlink()
    return path


def train_reid_steps(
    data: ReidSet, cfg: ReidTrainConfig, out: str | Path, until: int, device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> tuple[TwoStreamReID, dict[str, Any]]:
    """Train from the latest checkpoint of ``out`` (or from scratch) up to step ``until``; checkpoints every
    ``checkpoint_every`` steps and at ``until``. Returns the network and ``{step, loss, seconds,
    crops_per_second}``. ValueError when the checkpoint was made with another seed or data."""
    from pytorch_metric_learning import distances, losses, miners

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = fit_set(data, cfg.input_size)
    classes = int(data.identity.max()) + 1
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, classes).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    ck = latest_checkpoint(out)
    if ck is not None:
        state = torch.load(ck, map_location=device, weights_only=True)
        saved = json.loads(state["config"])
        if saved["seed"] != cfg.seed or saved["backbone"] != cfg.backbone:
            raise ValueError(f"{ck}: made with seed {saved['seed']} and backbone {saved['backbone']}; this run has "
                             f"seed {cfg.seed} and {cfg.backbone} (use another --out, or the same settings)")
        if state["model"]["classifier.weight"].shape[0] != classes:
            raise ValueError(f"{ck}: trained on {state['model']['classifier.weight'].shape[0]} identities, the data "
                             f"now holds {classes}: the training data changed (use another --out)")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
        if progress:
            progress(f"resumed from {ck.name} (step {step})")
    triplet = losses.TripletMarginLoss(margin=cfg.margin, distance=distances.LpDistance(normalize_embeddings=True))
    miner = miners.BatchHardMiner()
    net.train()
    cuda = str(device).startswith("cuda")
    t0, first, loss_value, done = time.perf_counter(), step, float("nan"), 0
    while step < until:
        rng = np.random.default_rng([cfg.seed, step])
        idx = sample_batch(data, rng, cfg.identities, cfg.per_identity)
        crops, heat = _augment(data.crops[idx], data.heatmaps[idx], rng)
        labels = torch.from_numpy(data.identity[idx]).to(device)
        x = to_input_tensor(crops, device)
        hm = torch.from_numpy(np.ascontiguousarray(heat)).to(device)
        lr = float(cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup)) * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            res = net(x, hm)
        assert isinstance(res, ReidOutput)
        emb = res.embedding.float()
        loss = triplet(emb, labels, miner(emb, labels))
        for head in res.layerwise:
            loss = loss + cfg.layerwise_weight * triplet(head.float(), labels, miner(head.float(), labels))
        if res.logits is not None:
            loss = loss + cfg.id_weight * F.cross_entropy(res.logits.float(), labels, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        step += 1
        done += len(idx)
        loss_value = float(loss.detach())
        if progress and (step % 50 == 0 or step == until):
            progress(f"step {step}/{cfg.steps} loss {loss_value:.3f} lr {lr:.2e}")
        if step % cfg.checkpoint_every == 0 or step == until:
            _save(out, step, net, opt, cfg)
    seconds = time.perf_counter() - t0
    return net, {"step": step, "steps_this_run": step - first, "loss": loss_value, "seconds": round(seconds, 2),
                 "crops_per_second": round(done / seconds, 1) if seconds > 0 else 0.0}

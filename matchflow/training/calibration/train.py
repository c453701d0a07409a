"""Training of the learned calibration networks (:mod:`matchflow.models.calibration.ccbv_network`) on synthetic renders.

Everything is generated on the fly, deterministically from the seed and the step number:

- **Scenes**: a stadium, two teams and a few seconds of simulated play (:mod:`matchflow.synth`), filmed by a
  main camera whose position comes from the World Cup 2014 camera prior (:func:`pick_base_camera`, "dictionary"
  split; validation scenes use the "heldout" split) and that follows play (:func:`follow_play`). A new scene
  joins the pool of live scenes every few steps.
- **U-Net batches**: frames rendered at 512x288 by a scene's follow-play cameras with pan/tilt/zoom jitter, or
  by a view aimed anywhere on the pitch at any broadcast zoom, resized to the network input, with photometric
  and compression augmentation; targets are the true zone maps (:func:`zone_map` of the true homography).
  Loss: cross-entropy.
- **Siamese triplets**: an anchor view's zone map (corrupted as a segmentation would be, or the U-Net's own
  prediction for a rendered frame later in training), a nearby view and a farther view (clean templates);
  "nearby" is decided by the reprojection error between the views. Loss: triplet margin on L2 distances.
- **STN pairs**: an observed view (corrupted zone map, or the U-Net's prediction) and a template view perturbed
  from it (pan, tilt, zoom, aim and position); target: the displacement of the template image's corners
  under the template-to-observed image homography. Loss: MSE (pre-training as CCBV does).

All three networks step together; a checkpoint (state dicts, optimizer states, step) is written every
``checkpoint_every`` steps as plain tensors and numbers and training resumes from the latest one. At the end
the weights go to ``ccbv_unet.pt``, ``ccbv_siamese.pt``, ``ccbv_stn.pt`` and the run's configuration, losses,
validation metrics (on held-out scenes and cameras) and the files' sha256 to ``training.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from matchflow.models.calibration.ccbv import (
    WEIGHT_FILES,
    SiameseRetriever,
    STNRefiner,
    UNetSegmenter,
    corner_error,
    reprojection_error,
    save_network,
)
from matchflow.models.calibration.ccbv_network import (
    NET_SIZE,
    TEMPLATE_SIZE,
    HomographyRegressor,
    ZoneEncoder,
    ZoneUNet,
    count_parameters,
    homography_to_corners,
    one_hot,
)
from matchflow.models.geometry.camera import (
    PinholeCamera,
    apply_homography,
    front_sign,
    look_at_rotation,
    pan_tilt_roll_to_rotation,
)
from matchflow.models.geometry.zones import N_ZONES, OUTSIDE, zone_map

if TYPE_CHECKING:
    from matchflow.synth.director import BaseCamera

__all__ = ["TrainConfig", "train_calibration", "validate", "RENDER_SIZE"]

RENDER_SIZE = (512, 288)
_CANON = (1280, 720)
_CKPT = re.compile(r"^ckpt_(\d+)\.pt$")


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (see the module docstring); ``batch`` frames per U-Net step, ``pair_batch``
    siamese triplets and ``stn_batch`` STN pairs per step (0: 2x and 4x ``batch``)."""

    steps: int = 1500
    seed: int = 0
    batch: int = 6
    pair_batch: int = 0
    stn_batch: int = 0
    lr_unet: float = 2e-3
    lr_siamese: float = 1e-3
    lr_stn: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03
    triplet_margin: float = 0.2
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 10
    scene_every: int = 6
    live_scenes: int = 4
    scene_seconds: float = 6.0
    feedback_from: float = 0.25  # share of the steps after which U-Net predictions feed the other two nets
    validation_frames: int = 32
    validation_pairs: int = 64
    stn_iterations: int = 3

    def __post_init__(self) -> None:
        self.pair_batch = self.pair_batch or 2 * self.batch
        self.stn_batch = self.stn_batch or 4 * self.batch


# ------------------------------------------------------------------------------------------------ cameras
def _pick_base(rng: np.random.Generator, split: str) -> BaseCamera:
    from matchflow.synth.director import pick_base_camera

    return pick_base_camera(rng, split=split)


@lru_cache(maxsize=4)
def _base_cameras(split: str, tries: int = 300) -> tuple:
    """Distinct plausible main cameras of the prior's ``split`` (1280x720), in a fixed order."""
    rng = np.random.default_rng(20240611)
    found: dict[str, object] = {}
    for _ in range(tries):
        b = _pick_base(rng, split)
        found.setdefault(b.name, b)
    return tuple(found[k] for k in sorted(found))


def _aim(cam: PinholeCamera) -> np.ndarray:
    axis = np.asarray(cam.rotation)[2]
    if axis[2] <= 1e-6:
        return np.zeros(2)
    s = -cam.position[2] / axis[2]
    return (cam.position + s * axis)[:2]


def _level_roll(cam: PinholeCamera) -> float:
    return float(np.clip(cam.pan_tilt_roll[2], np.radians(-1.0), np.radians(1.0)))


def random_view(rng: np.random.Generator, base: PinholeCamera) -> PinholeCamera:
    """A broadcast view from (near) the position of ``base``: aimed anywhere on the pitch, 20 to 70 m wide
    across the image at the aim point, level; 1280x720."""
    pos = np.asarray(base.position, dtype=float) + rng.normal(0.0, [1.0, 2.0, 0.7])
    target = np.array([rng.uniform(-50.0, 50.0), rng.uniform(-22.0, 18.0), 0.0])
    dist = float(np.linalg.norm(target - pos))
    width_m = float(np.exp(rng.uniform(np.log(20.0), np.log(70.0))))
    focal = float(np.clip(_CANON[0] * dist / width_m, 1000.0, 6500.0))
    roll = _level_roll(base) + rng.normal(0.0, np.radians(0.3))
    return PinholeCamera(focal, look_at_rotation(pos, target, roll), pos, _CANON)


def perturb(rng: np.random.Generator, cam: PinholeCamera, mag: float) -> PinholeCamera:
    """A view near ``cam``: aim moved ~9 m x ``mag`` along the pitch and ~4 m x ``mag`` across, position
    ~(1.5, 3, 1) m x ``mag``, zoom ~18% x ``mag``, roll ~0.4 degrees x ``mag``; same image size."""
    aim = _aim(cam)
    pos0 = np.asarray(cam.position, dtype=float)
    target = np.append(aim + rng.normal(0.0, [9.0 * mag, 4.0 * mag]), 0.0)
    pos = pos0 + rng.normal(0.0, [1.5, 3.0, 1.0]) * mag
    d0 = float(np.linalg.norm(np.append(aim, 0.0) - pos0))
    d1 = float(np.linalg.norm(target - pos))
    focal = cam.focal_px * d1 / max(d0, 1e-6) * float(np.exp(rng.normal(0.0, 0.18 * mag)))
    focal = float(np.clip(focal, 800.0 * cam.image_size[0] / _CANON[0], 8000.0 * cam.image_size[0] / _CANON[0]))
    roll = cam.pan_tilt_roll[2] + rng.normal(0.0, np.radians(0.4) * mag)
    return PinholeCamera(focal, look_at_rotation(pos, target, roll), pos, cam.image_size)


def jitter(rng: np.random.Generator, cam: PinholeCamera) -> PinholeCamera:
    """``cam`` with pan (~2.5 degrees), tilt (~1.2 degrees) and zoom (~12%) jitter."""
    pan, tilt, roll = cam.pan_tilt_roll
    rot = pan_tilt_roll_to_rotation(
        pan + rng.normal(0.0, np.radians(2.5)), tilt + rng.normal(0.0, np.radians(1.2)), roll
    )
    return PinholeCamera(cam.focal_px * float(np.exp(rng.normal(0.0, 0.12))), rot, cam.position, cam.image_size)


def _h_at(cam: PinholeCamera, size: tuple[int, int]) -> np.ndarray:
    """Pitch-to-image homography of ``cam`` rescaled to an image of ``size``."""
    h = np.diag([size[0] / cam.image_size[0], size[1] / cam.image_size[1], 1.0]) @ cam.homography()
    return h / np.abs(h).max()


def _template(cam: PinholeCamera) -> np.ndarray:
    return zone_map(_h_at(cam, TEMPLATE_SIZE), TEMPLATE_SIZE)


def _pitch_share(z: np.ndarray) -> float:
    return float(np.mean(z != OUTSIDE))


# ------------------------------------------------------------------------------------------------ scenes
class _Scene:
    """A stadium, teams, a few seconds of play, its follow-play cameras and a renderer at RENDER_SIZE."""

    def __init__(self, ss: np.random.SeedSequence, seconds: float, split: str, size: tuple[int, int]) -> None:
        from matchflow.synth.director import follow_play
        from matchflow.synth.play import simulate_half
        from matchflow.synth.render import FrameRenderer
        from matchflow.synth.stadium import random_stadium, random_teams

        rng = np.random.default_rng(ss)
        self.size = size
        stadium = random_stadium(rng)
        teams = random_teams(rng)
        half = int(rng.integers(1, 3))
        play = simulate_half(rng, teams, max(2, int(round(seconds * 25))), 25, 1.0 if half == 1 else -1.0)
        self.base = _pick_base(rng, split)
        self.cams = follow_play(rng, play, self.base, size)
        self.renderer = FrameRenderer(stadium, teams, play, rng, size, half)
        self.frames = play.frames

    def sample(self, rng: np.random.Generator, follow: float = 0.6) -> tuple[np.ndarray, PinholeCamera]:
        """An RGB frame (RENDER_SIZE) and its camera: a follow-play camera with jitter, or a random view."""
        f = int(rng.integers(self.frames))
        if rng.random() < follow:
            cam = jitter(rng, self.cams[f])
        else:
            cam = random_view(rng, self.base.camera).with_size(*self.size)
        bgr, _ = self.renderer.render(cam, f)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), cam


def _augment(rng: np.random.Generator, rgb: np.ndarray) -> np.ndarray:
    """Photometric and compression augmentation of an RGB uint8 image."""
    x: np.ndarray = rgb.astype(np.float32)
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.92, 1.08, 3)
    x = (x - 128.0) * rng.uniform(0.8, 1.2) + 128.0
    x = x * gain + rng.uniform(-18.0, 18.0)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.3:
        x = x + rng.normal(0.0, rng.uniform(1.5, 5.0), x.shape).astype(np.float32)
    out: np.ndarray = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 90))])
        if ok:
            out = cast(np.ndarray, cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))  # decodes the JPEG just encoded
    return out


def _corrupt(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """A zone map degraded as a segmentation would be: blocky boundaries, blobs of wrong labels, a shrunk
    pitch region, a thin zone swallowed by its neighbour."""
    z = z.copy()
    h, w = z.shape
    small: np.ndarray | list[int]
    if rng.random() < 0.4:
        small = cv2.resize(z, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
        z = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.3:
        field = (z != OUTSIDE).astype(np.uint8)
        z[(cv2.erode(field, np.ones((3, 3), np.uint8)) == 0) & (field == 1)] = OUTSIDE
    if rng.random() < 0.15:
        present = np.unique(z[z != OUTSIDE])
        small = [int(v) for v in present if int(v) % 5 in (3, 4, 0)]  # goal areas, arcs, circle halves
        if small:
            v = small[int(rng.integers(len(small)))]
            z[z == v] = 1 if v <= 5 else 6
    for _ in range(int(rng.poisson(2.0))):
        c = (int(rng.integers(w)), int(rng.integers(h)))
        axes = (int(rng.integers(1, 6)), int(rng.integers(1, 4)))
        cv2.ellipse(z, c, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(N_ZONES)), -1)
    return z


# ------------------------------------------------------------------------------------------------ samplers
class _Data:
    """Deterministic data of a run: the batches of step ``s`` depend only on (seed, s) and the networks."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.bases = _base_cameras("dictionary")
        self._scenes: dict[int, _Scene] = {}

    def rng(self, step: int, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.cfg.seed, 1000 + stream, step]))

    def scenes(self, step: int) -> list[_Scene]:
        newest = step // self.cfg.scene_every
        ids = [i for i in range(newest - self.cfg.live_scenes + 1, newest + 1) if i >= 0]
        for i in list(self._scenes):
            if i not in ids:
                del self._scenes[i]
        for i in ids:
            if i not in self._scenes:
                ss = np.random.SeedSequence([self.cfg.seed, 1, i])
                self._scenes[i] = _Scene(ss, self.cfg.scene_seconds, "dictionary", RENDER_SIZE)
        return [self._scenes[i] for i in ids]

    def random_view(self, rng: np.random.Generator) -> PinholeCamera:
        for _ in range(20):
            cam = random_view(rng, self.bases[int(rng.integers(len(self.bases)))].camera)
            if _pitch_share(_template(cam)) > 0.1:
                return cam
        return cam

    def unet_batch(self, step: int) -> tuple[np.ndarray, np.ndarray, list[PinholeCamera]]:
        rng = self.rng(step, 0)
        scenes = self.scenes(step)
        images, zones, cams = [], [], []
        for _ in range(self.cfg.batch):
            scene = scenes[int(rng.integers(len(scenes)))]
            rgb, cam = scene.sample(rng)
            images.append(_augment(rng, cv2.resize(rgb, NET_SIZE, interpolation=cv2.INTER_AREA)))
            zones.append(zone_map(_h_at(cam, NET_SIZE), NET_SIZE))
            cams.append(cam)
        return np.stack(images), np.stack(zones), cams

    def stn_pair(self, rng: np.random.Generator, obs_cam: PinholeCamera, observed: np.ndarray | None):
        """(observed, template, displacement) or None: a template view perturbed from ``obs_cam``."""
        obs_cam = obs_cam.with_size(*TEMPLATE_SIZE)
        if observed is None:
            observed = _corrupt(rng, _template(obs_cam))
        h_obs = _h_at(obs_cam, TEMPLATE_SIZE)
        for _ in range(10):
            mag = float(rng.uniform(0.0, 1.0))
            t_cam = perturb(rng, obs_cam, mag)
            tmpl = _template(t_cam)
            if _pitch_share(tmpl) < 0.05:
                continue
            c = h_obs @ np.linalg.inv(_h_at(t_cam, TEMPLATE_SIZE))
            d = homography_to_corners(c, TEMPLATE_SIZE)
            if np.all(np.isfinite(d)) and np.abs(d).max() < 0.5:
                return observed, tmpl, d
        return None

    def triplet(self, rng: np.random.Generator, anchor_cam: PinholeCamera, anchor: np.ndarray | None):
        """(anchor, positive, negative) zone maps: the positive is the view nearer to the anchor's."""
        anchor_cam = anchor_cam.with_size(*TEMPLATE_SIZE)
        if anchor is None:
            anchor = _corrupt(rng, _template(anchor_cam))
        h_a = _h_at(anchor_cam, TEMPLATE_SIZE)
        near = perturb(rng, anchor_cam, float(rng.uniform(0.05, 0.4)))
        if rng.random() < 0.6:
            far = perturb(rng, anchor_cam, float(rng.uniform(0.5, 2.0)))
        else:
            far = self.random_view(rng).with_size(*TEMPLATE_SIZE)
        e_near = reprojection_error(_h_at(near, TEMPLATE_SIZE), h_a, TEMPLATE_SIZE, 4.0)
        e_far = reprojection_error(_h_at(far, TEMPLATE_SIZE), h_a, TEMPLATE_SIZE, 4.0)
        if np.nan_to_num(e_near, nan=1e9) > np.nan_to_num(e_far, nan=1e9):
            near, far = far, near
        return anchor, _template(near), _template(far)


# ------------------------------------------------------------------------------------------------ training
def _lr_factor(step: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    found = []
    for p in out.glob("ckpt_*.pt"):
        m = _CKPT.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mean_tail(values: list[float], n: int = 50) -> float | None:
    tail = [v for v in values[-n:] if v is not None and np.isfinite(v)]
    return float(np.mean(tail)) if tail else None


def train_calibration(
    out_dir: str | Path,
    steps: int = 1500,
    seed: int = 0,
    batch: int = 6,
    device: str = "cpu",
    resume: bool = True,
    progress: Callable[[str], None] | None = None,
    **overrides,
) -> dict:
    """Train the U-Net, siamese encoder and STN regressor (see the module docstring) into ``out_dir``; returns
    the content of ``training.json``. ``overrides``: more :class:`TrainConfig` fields (``checkpoint_every``,
    ``validation_frames``...). With ``resume``, the latest checkpoint in ``out_dir`` (same seed) is
    continued; a run whose checkpoint already reached ``steps`` only writes the final files again."""
    say = progress or (lambda message: None)
    cfg = TrainConfig(steps=int(steps), seed=int(seed), batch=int(batch), **overrides)
    if cfg.steps < 1 or cfg.batch < 1:
        raise ValueError("steps and batch must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda requested but CUDA is not available")

    torch.manual_seed(cfg.seed)
    unet, siamese, stn = ZoneUNet().to(dev), ZoneEncoder().to(dev), HomographyRegressor().to(dev)
    nets = {"unet": unet, "siamese": siamese, "stn": stn}
    lrs = {"unet": cfg.lr_unet, "siamese": cfg.lr_siamese, "stn": cfg.lr_stn}
    opts = {k: torch.optim.AdamW(n.parameters(), lr=lrs[k], weight_decay=cfg.weight_decay) for k, n in nets.items()}
    history: dict[str, list] = {"unet": [], "unet_acc": [], "siamese": [], "stn": [], "stn_px": []}
    start_step, resumed_from = 0, None
    if resume:
        ckpts = _checkpoints(out)
        if ckpts:
            ck_step, ck_path = ckpts[-1]
            ck = torch.load(ck_path, map_location="cpu", weights_only=True)
            if int(ck["seed"]) != cfg.seed:
                raise ValueError(f"{ck_path} was trained with seed {ck['seed']}, not {cfg.seed}; use --no-resume "
                                 "or another output folder")
            for k, n in nets.items():
                n.load_state_dict(ck["nets"][k])
                opts[k].load_state_dict(ck["optimizers"][k])
            history = {k: list(v) for k, v in ck["history"].items()}
            start_step = resumed_from = int(ck["step"])
            say(f"resuming from {ck_path.name} at step {start_step}")
    else:
        for _, p in _checkpoints(out):
            p.unlink()

    split = "dictionary"
    say(
        f"training CCBV networks for {cfg.steps} steps on {dev} (seed {cfg.seed}, batch {cfg.batch} frames, "
        f"{cfg.pair_batch} triplets, {cfg.stn_batch} STN pairs; prior cameras: {split}; parameters: unet "
        f"{count_parameters(unet)}, siamese {count_parameters(siamese)}, stn {count_parameters(stn)})"
    )
    data = _Data(cfg)
    started = time.perf_counter()
    t_log = time.perf_counter()
    feedback_step = int(cfg.feedback_from * cfg.steps)

    def save_checkpoint(step: int) -> None:
        payload = {
            "step": step, "seed": cfg.seed, "config": asdict(cfg),
            "nets": {k: n.state_dict() for k, n in nets.items()},
            "optimizers": {k: o.state_dict() for k, o in opts.items()},
            "history": history,
        }
        path = out / f"ckpt_{step:07d}.pt"
        tmp = path.with_name(path.name + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        for _, old in _checkpoints(out)[: -max(1, cfg.keep_checkpoints)]:
            old.unlink()
        say(f"checkpoint {path.name}")

    for step in range(start_step, cfg.steps):
        for k, o in opts.items():
            for g in o.param_groups:
                g["lr"] = lrs[k] * _lr_factor(step, cfg)
        for n in nets.values():
            n.train()

        # U-Net: cross-entropy against the true zone maps
        images, zones, cams = data.unet_batch(step)
        x = torch.from_numpy(images).to(dev).permute(0, 3, 1, 2).float().div_(255.0)
        y = torch.from_numpy(zones.astype(np.int64)).to(dev)
        logits = unet(x)
        loss_u = F.cross_entropy(logits, y)
        opts["unet"].zero_grad(set_to_none=True)
        loss_u.backward()
        opts["unet"].step()
        pred = logits.detach().argmax(1)
        history["unet"].append(loss_u.item())
        history["unet_acc"].append(float((pred == y).float().mean()))
        feedback = step >= feedback_step
        predicted = pred[:, ::2, ::2].to(torch.uint8).cpu().numpy() if feedback else None

        # siamese: triplets, anchors are observations, positives and negatives templates
        rng = data.rng(step, 1)
        triplets = []
        if feedback:
            assert predicted is not None  # set whenever feedback is
            for i in range(min(len(cams), cfg.pair_batch // 4)):
                triplets.append(data.triplet(rng, cams[i], predicted[i]))
        while len(triplets) < cfg.pair_batch:
            triplets.append(data.triplet(rng, data.random_view(rng), None))
        anchor, positive, negative = (one_hot(np.stack(t)).to(dev) for t in zip(*triplets))
        emb = siamese(torch.cat([anchor, positive, negative]))
        ea, ep, en = emb.split(len(triplets))
        loss_s = F.triplet_margin_loss(ea, ep, en, margin=cfg.triplet_margin)
        opts["siamese"].zero_grad(set_to_none=True)
        loss_s.backward()
        opts["siamese"].step()
        history["siamese"].append(loss_s.item())

        # STN: corner displacements between a perturbed template and the observation
        rng = data.rng(step, 2)
        pairs = []
        if feedback:
            assert predicted is not None  # set whenever feedback is
            for i in range(len(cams)):
                pair = data.stn_pair(rng, cams[i], predicted[i])
                if pair is not None:
                    pairs.append(pair)
        while len(pairs) < cfg.stn_batch:
            pair = data.stn_pair(rng, data.random_view(rng), None)
            if pair is not None:
                pairs.append(pair)
        obs_z, tmpl_z, disp = zip(*pairs)
        target = torch.from_numpy(np.stack(disp)).float().to(dev)
        pred_d = stn(one_hot(np.stack(obs_z)).to(dev), one_hot(np.stack(tmpl_z)).to(dev))
        loss_t = F.mse_loss(pred_d, target)
        opts["stn"].zero_grad(set_to_none=True)
        loss_t.backward()
        opts["stn"].step()
        history["stn"].append(loss_t.item())
        # mean corner error in pixels of a 640-wide working image
        err = (pred_d.detach() - target).view(-1, 4, 2) * torch.tensor([640.0, 360.0], device=dev)
        history["stn_px"].append(float(err.norm(dim=2).mean()))

        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            per = (now - t_log) / max(1, min(cfg.log_every, done - start_step))
            t_log = now
            tail = cfg.log_every
            say(
                f"step {done}/{cfg.steps}  unet ce {_mean_tail(history['unet'], tail):.3f} acc "
                f"{_mean_tail(history['unet_acc'], tail):.3f}  siamese {_mean_tail(history['siamese'], tail):.4f}  stn mse "
                f"{_mean_tail(history['stn'], tail):.5f} ({_mean_tail(history['stn_px'], tail):.1f} px)  "
                f"{per:.2f} s/step, eta {per * (cfg.steps - done) / 60:.1f} min"
            )
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(done)

    train_seconds = time.perf_counter() - started
    final_step = max(start_step, cfg.steps)
    meta = {"steps": final_step, "seed": cfg.seed, "data": "synthetic renders (matchflow.synth)"}
    paths = {k: out / WEIGHT_FILES[k] for k in nets}
    for k, n in nets.items():
        save_network(n, k, paths[k], meta)
    say("validating on held-out scenes and cameras")
    metrics = validate(paths, cfg, device=str(dev), progress=say)
    report = {
        "what": "CCBV calibration networks (zone U-Net, siamese template encoder, STN homography regressor)",
        "data": "synthetic renders only (matchflow.synth: simulated play, procedural stadiums, main cameras from "
                "the World Cup 2014 camera prior); no real frames",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "steps": final_step,
        "resumed_from": resumed_from,
        "device": str(dev),
        "prior_split": split,
        "train_seconds_this_run": round(train_seconds, 1),
        "final_losses": {
            "unet_cross_entropy": _mean_tail(history["unet"]),
            "unet_train_pixel_accuracy": _mean_tail(history["unet_acc"]),
            "siamese_triplet": _mean_tail(history["siamese"]),
            "stn_mse": _mean_tail(history["stn"]),
            "stn_train_corner_error_px_640": _mean_tail(history["stn_px"]),
        },
        "validation": metrics,
        "weights": {
            WEIGHT_FILES[k]: {"sha256": _sha256(paths[k]), "bytes": paths[k].stat().st_size,
                              "parameters": count_parameters(nets[k])}
            for k in nets
        },
        "sizes": {"net_input": list(NET_SIZE), "template": list(TEMPLATE_SIZE), "render": list(RENDER_SIZE)},
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    (out / "training.json").write_text(json.dumps(report, indent=1))
    say(f"wrote {', '.join(WEIGHT_FILES.values())} and training.json to {out}")
    return report


# ------------------------------------------------------------------------------------------------ validation
def _validation_dictionary(work: tuple[int, int]) -> tuple[np.ndarray, str]:
    try:
        from matchflow.models.calibration.dictionary import default_dictionary

        return default_dictionary(work).homographies, "calibration.dictionary.default_dictionary"
    except Exception:  # fall back on the prior itself
        from matchflow.models.geometry.camera_prior import load_camera_prior, prior_split

        prior = load_camera_prior()
        names = [n for n in prior if prior_split(n) == "dictionary"]
        s = np.diag([work[0] / _CANON[0], work[1] / _CANON[1], 1.0])
        return np.stack([s @ prior[n] for n in names]), "camera prior"


def validate(paths: dict[str, Path], cfg: TrainConfig, device: str = "cpu",
             progress: Callable[[str], None] | None = None) -> dict:
    """Metrics of trained weights on frames rendered from held-out scenes (other seeds, the prior's "heldout"
    cameras when the prior has splits) at the working size 640x360: zone pixel accuracy and IoU, retrieval and
    refinement reprojection errors (working pixels) against the truth, and STN corner errors on held-out
    synthetic template/observation pairs."""
    say = progress or (lambda message: None)
    work = (640, 360)
    seg = UNetSegmenter(paths["unet"], device=device)
    refiners = {it: STNRefiner(paths["stn"], device=device, iterations=it) for it in (1, cfg.stn_iterations)}
    out: dict = {"frames": 0}
    n_frames = max(0, int(cfg.validation_frames))
    if n_frames:
        per_scene = 8
        n_scenes = max(1, math.ceil(n_frames / per_scene))
        frames: list[np.ndarray]
        frames, truths = [], []
        for k in range(n_scenes):
            scene = _Scene(np.random.SeedSequence([cfg.seed, 2, k]), 4.0, "heldout", work)
            rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 3, k]))
            for _ in range(min(per_scene, n_frames - len(frames))):
                rgb, cam = scene.sample(rng, follow=0.75)
                frames.append(rgb)
                truths.append(cam.homography() / cam.homography()[2, 2])
        conf = np.zeros((N_ZONES, N_ZONES), np.int64)
        observations = []
        for i in range(0, len(frames), 8):
            observations += seg.segment_batch(frames[i : i + 8])
        for obs, h in zip(observations, truths):
            assert obs.zones is not None  # the UNet segmenter labels zones
            t = zone_map(h, work).astype(np.int64)
            conf += np.bincount(t.ravel() * N_ZONES + obs.zones.ravel().astype(np.int64),
                                minlength=N_ZONES * N_ZONES).reshape(N_ZONES, N_ZONES)
        inter = np.diag(conf).astype(float)
        union = conf.sum(0) + conf.sum(1) - inter
        present = conf.sum(1) > 0
        f_inter = conf[1:, 1:].sum()
        f_union = conf.sum() - conf[0, 0]
        out.update(
            frames=len(frames),
            zone_pixel_accuracy=round(float(inter.sum() / conf.sum()), 4),
            zone_mean_iou=round(float(np.mean(inter[present] / np.maximum(union[present], 1))), 4),
            zone_iou={name: round(float(inter[i] / union[i]), 4) for i, name in enumerate(_zone_names()) if present[i]},
            field_iou=round(float(f_inter / max(f_union, 1)), 4),
        )
        say(f"zones: pixel accuracy {out['zone_pixel_accuracy']:.3f}, mean IoU {out['zone_mean_iou']:.3f}")
        dictionary, source = _validation_dictionary(work)
        retriever = SiameseRetriever(paths["siamese"], dictionary, work, device=device)
        errs: dict[str, list[float]] = {
            "retrieved": [], "oracle": [], "refined_1": [], f"refined_{cfg.stn_iterations}": [], "oracle_refined": [],
        }
        rank_of_best = []
        signs = np.array([front_sign(d, work) for d in dictionary])
        for obs, h in zip(observations, truths):
            all_err = _reprojection_errors(dictionary, signs, h, work)
            best = int(np.argmin(all_err))
            order = np.argsort(retriever.distances(obs))
            rank_of_best.append(int(np.flatnonzero(order == best)[0]))
            h_r = dictionary[order[0]]
            errs["retrieved"].append(float(all_err[order[0]]))
            errs["oracle"].append(float(all_err[best]))
            errs["refined_1"].append(reprojection_error(refiners[1].refine(obs, h_r), h, work))
            key = f"refined_{cfg.stn_iterations}"
            errs[key].append(reprojection_error(refiners[cfg.stn_iterations].refine(obs, h_r), h, work))
            errs["oracle_refined"].append(
                reprojection_error(refiners[cfg.stn_iterations].refine(obs, dictionary[best]), h, work))
        out["dictionary"] = {"source": source, "views": int(len(dictionary))}
        out["reprojection_error_px_640"] = {
            k: {"median": round(float(np.nanmedian(v)), 2), "mean": round(float(np.nanmean(np.minimum(v, 640.0))), 2)}
            for k, v in errs.items() if v
        }
        out["retrieval_rank_of_oracle_view"] = {
            "median": float(np.median(rank_of_best)),
            "top10_share": round(float(np.mean(np.array(rank_of_best) < 10)), 3),
        }
        r = out["reprojection_error_px_640"]
        say(f"reprojection error (median px at 640x360): retrieved {r['retrieved']['median']}, refined "
            f"{r[f'refined_{cfg.stn_iterations}']['median']}, best dictionary view {r['oracle']['median']}")
    n_pairs = max(0, int(cfg.validation_pairs))
    if n_pairs:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 4]))
        bases = _base_cameras("heldout") or _base_cameras("dictionary")
        before: list[float]
        after: dict[int, list[float]]
        before, after = [], {1: [], cfg.stn_iterations: []}
        from matchflow.models.calibration.base import FieldObservation

        while len(before) < n_pairs:
            cam = random_view(rng, bases[int(rng.integers(len(bases)))].camera).with_size(*work)
            h = cam.homography()
            z = zone_map(h, work)
            if _pitch_share(z) < 0.1:
                continue
            t_cam = perturb(rng, cam, float(rng.uniform(0.2, 1.0)))
            h_t = t_cam.homography()
            e0 = corner_error(h_t, h, work)
            if not np.isfinite(e0) or e0 > 0.5 * work[0]:
                continue
            obs = FieldObservation(work, 1.0, z != OUTSIDE, np.zeros_like(z, bool), z.astype(np.int16))
            before.append(e0)
            for it, ref in refiners.items():
                after[it].append(corner_error(ref.refine(obs, h_t), h, work))
        out["stn_synthetic_pairs"] = {
            "pairs": n_pairs,
            "corner_error_px_640_before": {"median": round(float(np.median(before)), 2),
                                           "mean": round(float(np.mean(before)), 2)},
            **{
                f"corner_error_px_640_after_{it}": {"median": round(float(np.median(v)), 2),
                                                    "mean": round(float(np.mean(np.minimum(v, 640.0))), 2)}
                for it, v in after.items()
            },
        }
        s = out["stn_synthetic_pairs"]
        say(f"STN on held-out pairs (median corner error px at 640x360): {s['corner_error_px_640_before']['median']} "
            f"-> {s[f'corner_error_px_640_after_{cfg.stn_iterations}']['median']}")
    return out


def _reprojection_errors(hs: np.ndarray, signs: np.ndarray, h_true: np.ndarray, size: tuple[int, int],
                         step: float = 4.0) -> np.ndarray:
    """:func:`reprojection_error` of many estimates (N, 3, 3) at once (their front signs given); 1e9 where the
    true view sees no pitch point."""
    xs = np.arange(-52.5, 52.5 + 1e-9, step)
    ys = np.arange(-34.0, 34.0 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    xy_t, w_t = apply_homography(h_true, pts)
    seen = (w_t * front_sign(h_true, size) > 0) & (xy_t[:, 0] >= 0) & (xy_t[:, 0] < size[0])
    seen &= (xy_t[:, 1] >= 0) & (xy_t[:, 1] < size[1])
    if not seen.any():
        return np.full(len(hs), 1e9)
    ph = np.column_stack([pts[seen], np.ones(int(seen.sum()))])
    q = np.einsum("nij,pj->npi", np.asarray(hs, dtype=float), ph)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.linalg.norm(q[..., :2] / q[..., 2:3] - xy_t[seen][None], axis=2)
    cap = 10.0 * size[0]
    err = np.where((q[..., 2] * signs[:, None] > 0) & np.isfinite(err), np.minimum(err, cap), cap)
    return err.mean(axis=1)


def _zone_names() -> tuple[str, ...]:
    from matchflow.models.geometry.zones import ZONE_NAMES

    return ZONE_NAMES

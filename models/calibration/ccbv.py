"""Learned calibration pieces (CCBV): a U-Net zone segmenter, a siamese template retriever and a
spatial-transformer refiner, implementing the interfaces of :mod:`matchflow.models.calibration.base`.

Select them in place of the classical pieces, e.g. with :class:`matchflow.models.calibration.calibrator.Calibrator`::

    from matchflow.models.calibration.calibrator import Calibrator
    from matchflow.models.calibration.dictionary import default_dictionary
    from matchflow.models.calibration.ccbv import SiameseRetriever, STNRefiner, UNetSegmenter

    size = (640, 360)                                   # working size of 1280x720 (16:9) frames
    dictionary = default_dictionary(size).homographies   # or any (N, 3, 3) pitch -> working image
    Calibrator(
        segmenter=UNetSegmenter(None),                  # None: the weights shipped in matchflow/data/ccbv
        retriever=SiameseRetriever(None, dictionary, size),
        refiner=STNRefiner(None),                       # or keep the default LineFitRefiner for precision
    )

The STN's homographies are coarse (tens of working pixels with the shipped weights, see
``matchflow/data/ccbv/README.md``); a plausibility check with a tolerance of a few pixels rejects many of
them, so a precise refiner after it (or instead of it) is the better choice where accuracy matters.

Weights files (``ccbv_unet.pt``, ``ccbv_siamese.pt``, ``ccbv_stn.pt``) are dictionaries of plain tensors and
numbers, loaded with ``torch.load(path, weights_only=True)``; :func:`matchflow.training.calibration.train.train_calibration`
writes them. ``weights_path=None`` takes the shipped file of that name, and fails with a message that says
how to get one when there is none.

Homographies map pitch metres to working-image pixels (the frame resized to :data:`WORK_WIDTH` wide).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from matchflow.models.calibration.base import WORK_WIDTH, FieldObservation, working_size
from matchflow.models.calibration.ccbv_network import (
    NET_SIZE,
    TEMPLATE_SIZE,
    HomographyRegressor,
    ZoneEncoder,
    ZoneUNet,
    corners_to_homography,
    image_corners,
    one_hot,
)
from matchflow.models.geometry.camera import apply_homography, front_sign
from matchflow.models.geometry.zones import OUTSIDE, zone_edges, zone_map

__all__ = [
    "WEIGHT_FILES",
    "UNetSegmenter",
    "SiameseRetriever",
    "STNRefiner",
    "shipped_weights",
    "load_network",
    "save_network",
    "weights_available",
    "working_size",
    "corner_error",
    "reprojection_error",
]

WEIGHT_FILES = {"unet": "ccbv_unet.pt", "siamese": "ccbv_siamese.pt", "stn": "ccbv_stn.pt"}
_FORMAT = "matchflow.ccbv"
_BUILDERS = {"unet": ZoneUNet, "siamese": ZoneEncoder, "stn": HomographyRegressor}


# ------------------------------------------------------------------------------------------------ weights
def shipped_weights(kind: str) -> Path:
    """Path of the shipped weights of ``kind`` ("unet", "siamese", "stn") in ``matchflow/data/ccbv`` (it may
    not exist: see :func:`weights_available`)."""
    return Path(str(resources.files("matchflow.data").joinpath("ccbv", WEIGHT_FILES[kind])))


def weights_available() -> bool:
    """Whether the three shipped weights files are present."""
    return all(shipped_weights(k).is_file() for k in WEIGHT_FILES)


def save_network(net: torch.nn.Module, kind: str, path: str | Path, meta: dict | None = None) -> None:
    """Write ``net`` as a weights file of ``kind``: its constructor arguments and float32 state dict."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown network kind {kind!r}")
    if kind == "unet":
        config = {"n_zones": net.n_zones, "widths": list(cast("tuple[int, ...]", net.widths))}
    elif kind == "siamese":
        config = {"n_zones": net.n_zones, "dim": net.dim, "width": net.width}
    else:
        config = {"n_zones": net.n_zones, "width": net.width, "slope": net.slope}
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in net.state_dict().items()}
    payload = {"format": _FORMAT, "kind": kind, "version": 1, "config": config, "meta": dict(meta or {}),
               "state_dict": state}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_network(kind: str, weights_path: str | Path | None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The network of ``kind`` from a weights file (None: the shipped one), in eval mode on ``device``."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown network kind {kind!r}")
    path = Path(weights_path) if weights_path is not None else shipped_weights(kind)
    if not path.is_file():
        where = "shipped with matchflow" if weights_path is None else "at the given path"
        raise FileNotFoundError(
            f"no {kind} weights {where} ({path}); train them with `matchflow train calibration --out DIR` and pass "
            f"DIR/{WEIGHT_FILES[kind]}"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or payload.get("kind") != kind:
        raise ValueError(f"{path} is not a matchflow CCBV {kind} weights file")
    cfg = dict(payload["config"])
    if "widths" in cfg:
        cfg["widths"] = tuple(cfg["widths"])
    net = _BUILDERS[kind](**cfg)
    net.load_state_dict(payload["state_dict"])
    return net.to(device).eval()


def _device(device: str | torch.device) -> torch.device:
    return torch.device(device)


def _normalized(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=float)
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h


def _zones_at(zones: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A label map resized (nearest) to ``size`` = (width, height)."""
    z = np.asarray(zones)
    if (z.shape[1], z.shape[0]) == tuple(size):
        return z.astype(np.uint8)
    return cv2.resize(z.astype(np.uint8), tuple(int(v) for v in size), interpolation=cv2.INTER_NEAREST)


# ------------------------------------------------------------------------------------------------ segmenter
class UNetSegmenter:
    """:class:`~matchflow.models.calibration.base.FieldSegmenter` by zone segmentation.

    The frame is resized to :data:`NET_SIZE`, the U-Net's logits are resized to the working resolution
    (``work_width`` wide) and each pixel takes its most likely zone. ``zones`` (int16) holds the labels of
    :mod:`matchflow.models.geometry.zones`; ``field`` is the pitch inside its touchlines and goal lines
    (zones != 0, without the run-off); ``lines`` the boundaries between zones on the pitch, i.e. where the
    markings are. ``extras["zone_confidence"]``: mean probability of the chosen zone over the field pixels.
    """

    def __init__(self, weights_path: str | Path | None = None, device: str | torch.device = "cpu",
                 work_width: int = WORK_WIDTH) -> None:
        self.device = _device(device)
        self.net = load_network("unet", weights_path, self.device)
        self.work_width = int(work_width)

    def segment(self, image: np.ndarray) -> FieldObservation:
        return self.segment_batch([image])[0]

    def segment_batch(self, images: list[np.ndarray]) -> list[FieldObservation]:
        """Observations of several RGB uint8 frames (H, W, 3), run through the network as one batch."""
        if not len(images):
            return []
        batch = []
        for im in images:
            im = np.asarray(im)
            if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
                raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {im.dtype} {im.shape}")
            batch.append(cv2.resize(im, NET_SIZE, interpolation=cv2.INTER_AREA))
        x = torch.from_numpy(np.stack(batch)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        out = []
        with torch.inference_mode():
            logits = self.net(x)
            for im, lg in zip(images, logits):
                size = working_size((im.shape[1], im.shape[0]), self.work_width)
                lg = F.interpolate(lg[None], size=(size[1], size[0]), mode="bilinear", align_corners=False)[0]
                prob, zones = torch.softmax(lg, dim=0).max(dim=0)
                zones_np = zones.to(torch.int16).cpu().numpy()
                field = zones_np != OUTSIDE
                conf = float(prob[torch.from_numpy(field).to(prob.device)].mean()) if field.any() else 0.0
                out.append(
                    FieldObservation(
                        size=size, scale=size[0] / im.shape[1], field=field, lines=zone_edges(zones_np),
                        zones=zones_np, extras={"zone_confidence": conf},
                    )
                )
        return out


# ------------------------------------------------------------------------------------------------ retriever
class SiameseRetriever:
    """:class:`~matchflow.models.calibration.base.ViewRetriever` by siamese embeddings of zone maps.

    ``dictionary_h``: (N, 3, 3) pitch-to-working-image homographies of the dictionary's views for images of
    ``work_size`` = (width, height). Their template zone maps are rendered and encoded once; an observation's
    zones (from a zone segmenter such as :class:`UNetSegmenter`) are encoded the same way and the ``k``
    templates nearest in L2 are returned, best first (rescaled when the observation's size differs).
    """

    def __init__(self, weights_path: str | Path | None, dictionary_h: np.ndarray,
                 work_size: tuple[int, int] = (WORK_WIDTH, WORK_WIDTH * 9 // 16),
                 device: str | torch.device = "cpu", batch_size: int = 256) -> None:
        self.device = _device(device)
        self.net = load_network("siamese", weights_path, self.device)
        hs = np.asarray(dictionary_h, dtype=float)
        if hs.ndim != 3 or hs.shape[1:] != (3, 3) or len(hs) == 0:
            raise ValueError(f"dictionary_h must be (N, 3, 3) with N > 0, got {hs.shape}")
        self.homographies = hs
        self.work_size = (int(work_size[0]), int(work_size[1]))
        s = np.diag([TEMPLATE_SIZE[0] / self.work_size[0], TEMPLATE_SIZE[1] / self.work_size[1], 1.0])
        self.templates = np.stack([zone_map(s @ h, TEMPLATE_SIZE) for h in hs])
        self.embeddings = torch.cat(
            [self.embed(self.templates[i : i + batch_size]) for i in range(0, len(hs), batch_size)]
        )

    def embed(self, zones: np.ndarray) -> torch.Tensor:
        """(N, dim) embeddings of label maps (N, h, w) at :data:`TEMPLATE_SIZE`."""
        with torch.inference_mode():
            return self.net(one_hot(zones).to(self.device))

    def distances(self, obs: FieldObservation) -> np.ndarray:
        """(N,) L2 distances between the observation's embedding and each dictionary view's."""
        if obs.zones is None:
            raise ValueError(
                "SiameseRetriever needs FieldObservation.zones, from a zone segmenter such as UNetSegmenter"
            )
        e = self.embed(_zones_at(obs.zones, TEMPLATE_SIZE)[None])
        return torch.cdist(e, self.embeddings)[0].cpu().numpy()

    def candidates(self, obs: FieldObservation, k: int) -> list[np.ndarray]:
        d = self.distances(obs)
        order = np.argsort(d, kind="stable")[: max(1, int(k))]
        scale = np.diag([obs.size[0] / self.work_size[0], obs.size[1] / self.work_size[1], 1.0])
        return [_normalized(scale @ self.homographies[i]) for i in order]


# ------------------------------------------------------------------------------------------------ refiner
class STNRefiner:
    """:class:`~matchflow.models.calibration.base.HomographyRefiner` by regression of the homography between
    the candidate's template zone map and the observed zones.

    Each of ``iterations`` rounds renders the current homography's zone map at :data:`TEMPLATE_SIZE`, regresses
    the displacement of the 4 image corners that maps it onto the observation, and composes:
    ``H <- C @ H`` with ``C`` the image-to-image homography of those displacements. A round that would move the
    pitch out of the image or behind the camera is dropped and refinement stops there.
    """

    def __init__(self, weights_path: str | Path | None = None, device: str | torch.device = "cpu",
                 iterations: int = 3) -> None:
        self.device = _device(device)
        self.net = load_network("stn", weights_path, self.device)
        self.iterations = int(iterations)

    def regress(self, observed: np.ndarray, template: np.ndarray) -> np.ndarray:
        """(N, 8) corner displacements (image widths and heights) from label maps (N, h, w) at TEMPLATE_SIZE."""
        with torch.inference_mode():
            d = self.net(one_hot(observed).to(self.device), one_hot(template).to(self.device))
        return d.cpu().numpy().astype(float)

    def refine(self, obs: FieldObservation, h: np.ndarray) -> np.ndarray:
        if obs.zones is None:
            raise ValueError("STNRefiner needs FieldObservation.zones, from a zone segmenter such as UNetSegmenter")
        size = (int(obs.size[0]), int(obs.size[1]))
        to_t = np.diag([TEMPLATE_SIZE[0] / size[0], TEMPLATE_SIZE[1] / size[1], 1.0])
        observed = _zones_at(obs.zones, TEMPLATE_SIZE)
        if not (observed != OUTSIDE).any():
            return _normalized(h)
        cur = _normalized(h)
        for _ in range(self.iterations):
            template = zone_map(to_t @ cur, TEMPLATE_SIZE)
            if not (template != OUTSIDE).any():
                break
            d = self.regress(observed[None], template[None])[0]
            if not np.all(np.isfinite(d)):
                break
            nxt = _normalized(corners_to_homography(d, size) @ cur)
            if not np.all(np.isfinite(nxt)) or not _sees_pitch(nxt, size):
                break
            cur = nxt
        return cur


def _sees_pitch(h: np.ndarray, size: tuple[int, int]) -> bool:
    """Whether the pitch's centre region lands in front of the camera somewhere in the image."""
    from matchflow.models.geometry.pitch import PitchModel

    return PitchModel().visible_fraction(h, size) > 0.0


# ------------------------------------------------------------------------------------------------ metrics
def corner_error(h_est: np.ndarray, h_true: np.ndarray, size: tuple[int, int]) -> float:
    """Mean distance (pixels) between the image corners and where ``h_true @ inv(h_est)`` sends them: how far
    the estimated view's image corners land from where they belong in the true image (inf when one maps to
    infinity). Both homographies map the pitch to images of ``size``."""
    c = np.asarray(h_true, dtype=float) @ np.linalg.inv(np.asarray(h_est, dtype=float))
    src = image_corners(size)
    q = np.column_stack([src, np.ones(4)]) @ c.T
    if np.any(np.abs(q[:, 2]) < 1e-12):
        return float("inf")
    return float(np.mean(np.linalg.norm(q[:, :2] / q[:, 2:3] - src, axis=1)))


def reprojection_error(h_est: np.ndarray, h_true: np.ndarray, size: tuple[int, int], step: float = 2.0) -> float:
    """Mean pixel distance between the estimated and true images of the pitch points (a grid every ``step``
    metres over the pitch) that the true view sees in front of the camera inside the image; points the
    estimate puts behind its camera count 10 image widths. NaN when the true view sees no pitch point."""
    xs = np.arange(-52.5, 52.5 + 1e-9, step)
    ys = np.arange(-34.0, 34.0 + 1e-9, step)
    gx, gy = np.meshgrid(xs, ys)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    ht, he = np.asarray(h_true, dtype=float), np.asarray(h_est, dtype=float)
    xy_t, w_t = apply_homography(ht, pts)
    seen = (w_t * front_sign(ht, size) > 0) & (xy_t[:, 0] >= 0) & (xy_t[:, 0] < size[0])
    seen &= (xy_t[:, 1] >= 0) & (xy_t[:, 1] < size[1])
    if not seen.any():
        return float("nan")
    xy_e, w_e = apply_homography(he, pts[seen])
    err = np.linalg.norm(xy_e - xy_t[seen], axis=1)
    bad = ~(w_e * front_sign(he, size) > 0) | ~np.isfinite(err)
    err[bad] = 10.0 * size[0]
    return float(np.mean(np.minimum(err, 10.0 * size[0])))


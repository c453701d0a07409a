"""The main broadcast camera: a real camera position from the World Cup 2014 prior, panned, tilted and zoomed
smoothly to follow play, as an operator on a fixed tripod does.

Cameras are :class:`matchflow.models.geometry.camera.PinholeCamera` (pitch metres, SoccerNet frame, z down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matchflow.models.geometry.camera import PinholeCamera, camera_from_homography, look_at_rotation
from matchflow.models.geometry.camera_prior import load_camera_prior, prior_names

from .play import HalfPlay

__all__ = [
    "pick_base_camera", "BaseCamera", "follow_play",
]

_PRIOR_SIZE = (1280, 720)


@dataclass(frozen=True)
class BaseCamera:
    """A camera decomposed from the prior: its name there, the camera at 1280x720 and its aim on the grass."""

    name: str
    camera: PinholeCamera
    aim: np.ndarray  # (2,) metres: where the optical axis meets the grass

    @property
    def view_width(self) -> float:
        """Width in metres of the scene seen across the image at the aim point."""
        dist = float(np.linalg.norm(np.append(self.aim, 0.0) - self.camera.position))
        return self.camera.image_size[0] * dist / self.camera.focal_px


def _plausible(cam: PinholeCamera) -> bool:
    x, y, z = cam.position
    roll = abs(np.degrees(cam.pan_tilt_roll[2]))
    return abs(x) < 15.0 and 45.0 < y < 110.0 and -45.0 < z < -8.0 and roll < 3.0 and cam.focal_px > 0


def _aim(cam: PinholeCamera) -> np.ndarray | None:
    axis = np.asarray(cam.rotation)[2]
    if axis[2] <= 0:
        return None
    s = -cam.position[2] / axis[2]
    return (cam.position + s * axis)[:2]


def pick_base_camera(rng: np.random.Generator, split: str | None = None) -> BaseCamera:
    """A random prior camera that decomposes into a plausible main camera (on the +y side, above the pitch,
    near the halfway line, level), among the cameras of ``split`` (see :func:`prior_names`) when given."""
    prior = load_camera_prior()
    names = prior_names(split)
    for idx in rng.permutation(len(names)):
        cam = camera_from_homography(prior[names[idx]], _PRIOR_SIZE)
        if cam is None or not _plausible(cam):
            continue
        aim = _aim(cam)
        if aim is not None:
            return BaseCamera(names[idx], cam, aim)
    raise RuntimeError(f"no plausible camera in the prior (split {split or 'all'})")


def _smooth(targets: np.ndarray, dt: float, omega: float) -> np.ndarray:
    """Critically damped second-order follower of ``targets`` (T, D), starting at rest on the first one."""
    out = np.empty_like(targets)
    x = targets[0].astype(float).copy()
    v = np.zeros_like(x)
    for i, target in enumerate(targets):
        a = omega * omega * (target - x) - 2.0 * omega * v
        v = v + a * dt
        x = x + v * dt
        out[i] = x
    return out


def follow_play(
    rng: np.random.Generator, play: HalfPlay, base: BaseCamera, size: tuple[int, int]
) -> list[PinholeCamera]:
    """One camera per frame of ``play`` for images of ``size`` (width, height) pixels: fixed position and roll
    of ``base``, the optical axis on a smoothed mix of the ball and the players around it, the focal length
    zooming between tighter and wider views around the base camera's."""
    dt = 1.0 / play.fps
    ball = play.ball[:, :2]
    players = play.position[:, :22]
    near = np.linalg.norm(players - ball[:, None, :], axis=2) < 22.0
    weight = near[..., None].astype(float)
    centroid = np.sum(players * weight, axis=1) / np.maximum(weight.sum(axis=1), 1.0)
    centroid = np.where(near.any(axis=1)[:, None], centroid, ball)
    focus = 0.65 * ball + 0.35 * centroid
    focus[:, 0] = np.clip(focus[:, 0], -45.0, 45.0)
    focus[:, 1] = np.clip(focus[:, 1], -24.0, 16.0)
    aim = _smooth(focus, dt, omega=1.6)

    # zoom: the operator's taste (from the base camera), changed every few seconds, wider for long balls
    width0 = float(np.clip(base.view_width, 30.0, 55.0))
    mult = np.empty(play.frames)
    k = 0
    while k < play.frames:
        n = int(rng.uniform(3.0, 8.0) / dt)
        mult[k : k + n] = rng.uniform(0.75, 1.3)
        k += n
    high = np.clip((-play.ball[:, 2] - 2.0) / 6.0, 0.0, 1.0)
    view = _smooth((width0 * mult * (1.0 + 0.25 * high))[:, None], dt, omega=1.0)[:, 0]

    cam0 = base.camera
    roll = float(np.clip(cam0.pan_tilt_roll[2], np.radians(-1.0), np.radians(1.0)))
    pos = np.asarray(cam0.position, dtype=float)
    scale = size[0] / _PRIOR_SIZE[0]
    cams = []
    for i in range(play.frames):
        target = np.array([aim[i, 0], aim[i, 1], 0.0])
        dist = float(np.linalg.norm(target - pos))
        focal = float(np.clip(_PRIOR_SIZE[0] * dist / view[i], 1300.0, 6000.0)) * scale
        cams.append(PinholeCamera(focal, look_at_rotation(pos, target, roll), pos, (int(size[0]), int(size[1]))))
    return cams

"""What the pieces of camera calibration exchange, and the interfaces each piece implements.

The calibrator works at a *working resolution* (default 640 pixels wide) to keep per-frame cost low; a
homography found there is scaled back to the frame's native pixels by :func:`to_native`.

Homographies here map pitch metres (SoccerNet frame, see :mod:`matchflow.models.geometry.camera`) to working-image
pixels, unless a name says otherwise. The ``calibration`` table stores the inverse direction (image pixels to
pitch metres) as DESIGN.md fixes it.

Pieces (each classical by default, learned by configuration):

- a :class:`FieldSegmenter` turns an RGB frame into a :class:`FieldObservation` (the grass of the pitch and
  the line pixels on it, at working resolution);
- a :class:`ViewRetriever` proposes candidate homographies for an observation from a dictionary of views;
- a :class:`HomographyRefiner` refines one candidate against the observation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "WORK_WIDTH",
    "FieldObservation",
    "FieldSegmenter",
    "ViewRetriever",
    "HomographyRefiner",
    "scale_matrix",
    "working_size",
    "to_native",
    "to_working",
]

WORK_WIDTH = 640


@dataclass
class FieldObservation:
    """Field evidence of one frame at working resolution.

    ``field``: (h, w) bool, pixels of the pitch's grass (the playing surface and its run-off, players on it
    included). ``lines``: (h, w) bool, pixels of the white pitch markings. ``scale``: working pixels per native
    pixel. ``zones``: optional (h, w) int16 zone labels from a learned zone segmenter (0 = not pitch).
    """

    size: tuple[int, int]  # working (width, height) pixels
    scale: float
    field: np.ndarray
    lines: np.ndarray
    zones: np.ndarray | None = None
    extras: dict = dataclasses.field(default_factory=dict)  # `field` is also an attribute of this class

    @property
    def native_size(self) -> tuple[int, int]:
        return (int(round(self.size[0] / self.scale)), int(round(self.size[1] / self.scale)))


@runtime_checkable
class FieldSegmenter(Protocol):
    def segment(self, image: np.ndarray) -> FieldObservation:
        """Field and line masks of an RGB uint8 frame (H, W, 3) at native resolution."""
        ...


@runtime_checkable
class ViewRetriever(Protocol):
    def candidates(self, obs: FieldObservation, k: int) -> list[np.ndarray]:
        """Up to ``k`` pitch-to-working-image homographies (3x3), best first."""
        ...


@runtime_checkable
class HomographyRefiner(Protocol):
    def refine(self, obs: FieldObservation, h: np.ndarray) -> np.ndarray:
        """A refined pitch-to-working-image homography starting from ``h``."""
        ...


def working_size(native_size: tuple[int, int], work_width: int = WORK_WIDTH) -> tuple[int, int]:
    """Working (width, height) of a frame of ``native_size`` = (width, height): ``work_width`` wide, same aspect."""
    return int(work_width), int(round(native_size[1] * work_width / native_size[0]))


def scale_matrix(scale: float) -> np.ndarray:
    """The 3x3 matrix that maps native pixels to working pixels (``scale`` working px per native px)."""
    return np.diag([scale, scale, 1.0])


def to_native(h_pitch_to_work: np.ndarray, scale: float) -> np.ndarray:
    """A pitch-to-working-image homography as pitch-to-native-image, normalised to h[2, 2] = 1 when possible."""
    h = np.linalg.inv(scale_matrix(scale)) @ np.asarray(h_pitch_to_work, dtype=float)
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h


def to_working(h_pitch_to_native: np.ndarray, scale: float) -> np.ndarray:
    """A pitch-to-native-image homography as pitch-to-working-image."""
    h = scale_matrix(scale) @ np.asarray(h_pitch_to_native, dtype=float)
    return h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h

"""Reading and writing SoccerNet's calibration files.

- CCBV calibration files (``1_field_calib_ccbv.json``, ``2_field_calib_ccbv.json`` beside a game's videos): one
  pitch-to-image homography per 2 fps frame of a half, with a confidence::

      {"size": [channels, height, width],
       "predictions": [[{"homography": [9 floats], "confidence": float}], ...]}

  ``homography`` is row-major and maps pitch metres (SoccerNet frame: origin at the centre spot, +x to the right
  goal, +y toward the main camera; the z = 0 plane) to pixels of an image of ``size`` (SoccerNet's files refer to
  398x224 frames or to the HQ frame size; :func:`rescale` moves a homography between sizes).
- SoccerNet camera JSON (pan, tilt, roll in degrees, position in metres, focal lengths and principal point in
  pixels): :func:`read_camera_json`, :func:`write_camera_json` around
  :func:`matchflow.models.geometry.camera.camera_from_soccernet_dict` / ``camera_to_soccernet_dict``.

Malformed files raise ValueError whose message starts with the file's name and says what is wrong.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import IO, Any, Union, cast

import numpy as np

from matchflow.models.geometry.camera import PinholeCamera, camera_from_soccernet_dict, camera_to_soccernet_dict
from matchflow.storage import fs

__all__ = [
    "CcbvCalibration",
    "PLACEHOLDER_HOMOGRAPHY",
    "read_ccbv",
    "write_ccbv",
    "rescale",
    "read_camera_json",
    "write_camera_json",
]

PathOrFile = Union[str, "os.PathLike[str]", IO[str], IO[bytes]]

PLACEHOLDER_HOMOGRAPHY = np.array([[1.0, 0.0, -1000.0], [0.0, 1.0, -1000.0], [0.0, 0.0, 1.0]])
"""Pitch-to-image homography written by :func:`write_ccbv` for frames without a valid calibration (with
confidence 0): invertible, it draws the whole pitch about 1000 pixels left of and above the image (no pitch point
inside it), and its inverse sends every pixel about 1 km off the pitch. Readers that threshold the confidence
skip these frames; readers that do not still see no pitch and no player on it."""


# --------------------------------------------------------------------------------------------- file access
def _name(path_or_file: PathOrFile) -> str:
    if hasattr(path_or_file, "read") or hasattr(path_or_file, "write"):
        return str(getattr(path_or_file, "name", "<stream>"))
    return os.fspath(path_or_file)  # type: ignore[arg-type]


def _read_text(path_or_file: PathOrFile, storage_options: dict[str, Any] | None) -> str:
    if hasattr(path_or_file, "read"):
        data = path_or_file.read()  # type: ignore[union-attr]
    else:
        data = fs.read_bytes(fs.normalize(os.fspath(path_or_file)), storage_options)  # type: ignore[arg-type]
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{_name(path_or_file)}: not UTF-8 text: {exc}") from None
    return data


def _write_text(path_or_file: PathOrFile, text: str, storage_options: dict[str, Any] | None) -> None:
    if hasattr(path_or_file, "write"):
        try:
            cast("IO[str]", path_or_file).write(text)
        except TypeError:
            cast("IO[bytes]", path_or_file).write(text.encode("utf-8"))
        return
    fs.write_bytes_atomic(fs.normalize(os.fspath(path_or_file)), text.encode("utf-8"), storage_options)  # type: ignore[arg-type]


def _load_json(path_or_file: PathOrFile, storage_options: dict[str, Any] | None) -> Any:
    text = _read_text(path_or_file, storage_options)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{_name(path_or_file)}: not valid JSON: {exc}") from None


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: {where} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: {where} must be finite, got {value}")
    return float(value)


def _numbers(value: Any, n: int, where: str, name: str) -> list[float]:
    if not isinstance(value, list):
        raise ValueError(f"{name}: {where} must be a list of {n} numbers, got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{name}: {where} has {len(value)} values, expected {n}")
    return [_number(v, f"{where}[{i}]", name) for i, v in enumerate(value)]


# --------------------------------------------------------------------------------------------- CCBV
@dataclass(frozen=True, eq=False)
class CcbvCalibration:
    """The calibrations of one half as a CCBV file holds them.

    ``size``: (width, height) pixels of the images the homographies refer to; ``homographies``: (N, 3, 3)
    pitch metres to image pixels, one per 2 fps frame; ``confidence``: (N,) as written in the file (0..1 for
    SoccerNet's and for files from :func:`write_ccbv`).
    """

    size: tuple[int, int]
    homographies: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.homographies)

    def image_to_pitch(self) -> np.ndarray:
        """(N, 3, 3) image pixels to pitch metres, normalised to h[2, 2] = 1 where possible; NaN where singular."""
        out = np.full(self.homographies.shape, np.nan)
        for i, h in enumerate(self.homographies):
            try:
                inv = np.linalg.inv(h)
            except np.linalg.LinAlgError:
                continue
            out[i] = inv / inv[2, 2] if abs(inv[2, 2]) > 1e-12 else inv
        return out

    def rescaled(self, size: tuple[int, int]) -> CcbvCalibration:
        """The same calibrations for images of ``size`` = (width, height) pixels."""
        return CcbvCalibration(
            (int(size[0]), int(size[1])), rescale(self.homographies, self.size, size), self.confidence.copy()
        )


def rescale(h_pitch_to_image: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Pitch-to-image homographies (3, 3) or (N, 3, 3) for images of ``from_size`` = (width, height) pixels,
    moved to images of ``to_size``: ``diag(w2 / w1, h2 / h1, 1) @ H`` (pixel coordinates scaled about the image
    corner, each axis by its own ratio)."""
    s = np.diag([to_size[0] / from_size[0], to_size[1] / from_size[1], 1.0])
    return s @ np.asarray(h_pitch_to_image, dtype=float)


def read_ccbv(path_or_file: PathOrFile, storage_options: dict[str, Any] | None = None) -> CcbvCalibration:
    """Read a SoccerNet CCBV calibration file (local path, ``s3://`` URL or open file).

    Only the first prediction of each frame is used (SoccerNet's files hold one). Raises ValueError naming the
    file and the problem when it is not JSON, lacks ``size`` or ``predictions``, or holds a value of the wrong
    type, length or a non-finite number; FileNotFoundError when it does not exist.
    """
    name = _name(path_or_file)
    data = _load_json(path_or_file, storage_options)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a JSON object with 'size' and 'predictions', got {type(data).__name__}")
    for key in ("size", "predictions"):
        if key not in data:
            raise ValueError(f"{name}: missing key {key!r}")
    size = _numbers(data["size"], 3, "'size' ([channels, height, width])", name)
    if any(v <= 0 or v != int(v) for v in size):
        raise ValueError(f"{name}: 'size' must hold positive integers [channels, height, width], got {data['size']}")
    preds = data["predictions"]
    if not isinstance(preds, list):
        raise ValueError(f"{name}: 'predictions' must be a list, got {type(preds).__name__}")
    hs = np.empty((len(preds), 3, 3))
    conf = np.empty(len(preds))
    for i, pred in enumerate(preds):
        where = f"predictions[{i}]"
        if not isinstance(pred, list) or not pred:
            raise ValueError(f"{name}: {where} must be a non-empty list of predictions")
        first = pred[0]
        if not isinstance(first, dict):
            raise ValueError(f"{name}: {where}[0] must be an object, got {type(first).__name__}")
        for key in ("homography", "confidence"):
            if key not in first:
                raise ValueError(f"{name}: {where}[0] has no {key!r}")
        hs[i] = np.reshape(_numbers(first["homography"], 9, f"{where}[0]['homography']", name), (3, 3))
        conf[i] = _number(first["confidence"], f"{where}[0]['confidence']", name)
    return CcbvCalibration((int(size[2]), int(size[1])), hs, conf)


def write_ccbv(
    path_or_file: PathOrFile,
    image_to_pitch: np.ndarray,
    size: tuple[int, int],
    confidence: np.ndarray,
    valid: np.ndarray | None = None,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write one half's calibrations as a CCBV file (local path, ``s3://`` URL or open file).

    ``image_to_pitch``: (N, 3, 3) or (N, 9) image pixels to pitch metres (the ``homography`` column of the
    ``calibration`` table) for images of ``size`` = (width, height); written inverted (pitch to image,
    normalised to h[2, 2] = 1 where possible) with ``confidence`` (N,) as is (clipped to 0..1). A frame whose
    ``valid`` is False, or whose homography is missing (NaN), not finite or singular, is written as
    :data:`PLACEHOLDER_HOMOGRAPHY` with confidence 0, so every reader can load the file.
    """
    hs = np.asarray(image_to_pitch, dtype=float).reshape(-1, 3, 3)
    n = len(hs)
    conf = np.asarray(confidence, dtype=float).reshape(-1)
    ok = np.ones(n, bool) if valid is None else np.asarray(valid, dtype=bool).reshape(-1).copy()
    if len(conf) != n or len(ok) != n:
        raise ValueError(f"write_ccbv: {n} homographies but {len(conf)} confidences and {len(ok)} valid flags")
    predictions = []
    for i in range(n):
        h_out = None
        if ok[i] and np.all(np.isfinite(hs[i])) and np.isfinite(conf[i]):
            try:
                inv = np.linalg.inv(hs[i])
            except np.linalg.LinAlgError:
                inv = None
            if inv is not None and np.all(np.isfinite(inv)):
                h_out = inv / inv[2, 2] if abs(inv[2, 2]) > 1e-12 else inv
        if h_out is None:
            predictions.append([{"homography": PLACEHOLDER_HOMOGRAPHY.ravel().tolist(), "confidence": 0.0}])
        else:
            c = float(np.clip(conf[i], 0.0, 1.0))
            predictions.append([{"homography": [float(v) for v in h_out.ravel()], "confidence": c}])
    doc = {"size": [3, int(size[1]), int(size[0])], "predictions": predictions}
    _write_text(path_or_file, json.dumps(doc), storage_options)


# --------------------------------------------------------------------------------------------- camera JSON
_CAMERA_SCALARS = ("pan_degrees", "tilt_degrees", "roll_degrees", "x_focal_length", "y_focal_length")


def read_camera_json(path_or_file: PathOrFile, storage_options: dict[str, Any] | None = None) -> PinholeCamera:
    """A :class:`PinholeCamera` from a SoccerNet camera JSON file (local path, ``s3://`` URL or open file).

    Angles in degrees, ``position_meters`` in the pitch frame, focal lengths and principal point in pixels; the
    image size is twice the principal point; distortion terms are ignored. ValueError names the file and the
    missing or bad field.
    """
    name = _name(path_or_file)
    d = _load_json(path_or_file, storage_options)
    if not isinstance(d, dict):
        raise ValueError(f"{name}: expected a JSON object of camera parameters, got {type(d).__name__}")
    for key in _CAMERA_SCALARS:
        if key not in d:
            raise ValueError(f"{name}: missing key {key!r}")
        _number(d[key], repr(key), name)
    for key, n in (("position_meters", 3), ("principal_point", 2)):
        if key not in d:
            raise ValueError(f"{name}: missing key {key!r}")
        _numbers(d[key], n, repr(key), name)
    if d["x_focal_length"] <= 0 or d["y_focal_length"] <= 0:
        raise ValueError(f"{name}: focal lengths must be positive, got {d['x_focal_length']}, {d['y_focal_length']}")
    if min(d["principal_point"]) <= 0:
        raise ValueError(f"{name}: 'principal_point' must be positive, got {d['principal_point']}")
    return camera_from_soccernet_dict(d)


def write_camera_json(
    path_or_file: PathOrFile, camera: PinholeCamera, storage_options: dict[str, Any] | None = None
) -> None:
    """Write a camera as a SoccerNet camera JSON file (local path, ``s3://`` URL or open file); no distortion."""
    _write_text(path_or_file, json.dumps(camera_to_soccernet_dict(camera), indent=2), storage_options)

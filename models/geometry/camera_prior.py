"""The camera prior: 209 World Cup 2014 broadcast cameras (pitch-to-image homographies at 1280x720) shipped in
``matchflow/data``, and its stable split into the cameras that build calibration dictionaries and the cameras
held out to evaluate them on unseen views. Pitch: SoccerNet frame, metres."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["load_camera_prior", "prior_split", "prior_names", "PRIOR_SPLITS"]

PRIOR_SPLITS = ("dictionary", "heldout")
_HELDOUT_MODULUS = 5  # about one camera in five is held out


@lru_cache(maxsize=1)
def load_camera_prior() -> dict[str, np.ndarray]:
    """The 209 World Cup 2014 pitch-to-image homographies (pitch metres to 1280x720 pixels), by image name."""
    text = resources.files("matchflow.data").joinpath("wc14_camera_prior.json").read_text()
    data = json.loads(text)
    return {k: np.asarray(v, dtype=float) for k, v in data["pitch_to_image"].items()}


def prior_split(name: str) -> str:
    """The split of the prior a camera belongs to, from a stable hash of its name: ``"heldout"`` (about one
    camera in five: kept out of a calibration's dictionary of views to evaluate it on unseen cameras) or
    ``"dictionary"``."""
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()
    return "heldout" if int(digest, 16) % _HELDOUT_MODULUS == 0 else "dictionary"


def prior_names(split: str | None = None) -> list[str]:
    """Names of the prior's cameras in ``split`` (``"dictionary"``, ``"heldout"``; None or ``"all"``: every
    camera), in the prior's natural order (by name length, then name)."""
    if split not in (None, "all", *PRIOR_SPLITS):
        raise ValueError(f"unknown prior split {split!r}: expected one of all, {', '.join(PRIOR_SPLITS)}")
    names = sorted(load_camera_prior(), key=lambda k: (len(k), k))
    if split in (None, "all"):
        return names
    return [n for n in names if prior_split(n) == split]

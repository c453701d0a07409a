"""Stadium layout and look, and the two teams with their kits, drawn at random per game.

Distances are metres in the pitch frame (origin at the centre spot, +y toward the main camera, z down);
colours are BGR uint8 triples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import numpy as np

from matchflow.models.geometry.pitch import PitchModel

__all__ = ["Stadium", "Kit", "Team", "random_stadium", "random_teams", "REFEREE_KIT"]

BGR = tuple[int, int, int]


@dataclass(frozen=True)
class Stadium:
    """Geometry beyond the pitch and the look of the grass, stands and light."""

    pitch: PitchModel = field(default_factory=PitchModel)
    side_board_y: float = 39.0  # far advertising boards at y = -side_board_y
    end_board_x: float = 58.0  # boards behind the goals at x = +-end_board_x
    near_track_y: float = 40.0  # near side: grass up to here, then track
    board_height: float = 0.9
    stand_rake_deg: float = 32.0
    stand_depth: float = 45.0  # metres along the slope of the stands
    grass_bgr: BGR = (52, 128, 62)
    track_bgr: BGR = (70, 78, 84)
    roof_bgr: BGR = (38, 36, 34)
    stripe_width: float = 5.25
    stripe_contrast: float = 0.06
    cross_stripes: bool = False
    light_gradient: tuple[float, float] = (0.02, 0.03)
    roof_shadow: tuple[float, float, float] | None = None  # shade where a x + b y + c > 0
    wear: float = 0.12
    sun_direction: tuple[float, float] = (0.5, -0.86)  # unit vector on the grass, away from the sun
    shadow_length: float = 0.7  # shadow length over body height
    shadow_strength: float = 0.45

    @property
    def ground_extent(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) metres of the ground texture; the stands rise from its far and end edges."""
        return (-(self.end_board_x + 2.5), self.end_board_x + 2.5, -(self.side_board_y + 2.5), self.near_track_y + 8.0)


@dataclass(frozen=True)
class Kit:
    """Colours of a kit (BGR)."""

    shirt: BGR
    shorts: BGR
    socks: BGR

    def as_dict(self) -> dict[str, list[int]]:
        return {"shirt": list(self.shirt), "shorts": list(self.shorts), "socks": list(self.socks)}


@dataclass(frozen=True)
class Team:
    """A team: its name, a three-letter code for the score overlay, outfield and goalkeeper kits."""

    name: str
    code: str
    kit: Kit
    goalkeeper_kit: Kit


REFEREE_KIT = Kit(shirt=(20, 20, 20), shorts=(15, 15, 15), socks=(20, 20, 20))

_CLUBS = [
    ("Northbridge FC", "NBR"), ("Eastvale United", "EVU"), ("Real Montaro", "RMO"), ("Sporting Lisvale", "SLI"),
    ("Harwick Athletic", "HAR"), ("Borussia Kelheim", "BKE"), ("Olympique Sauvin", "OSA"), ("Dynamo Varna", "DVA"),
    ("Atletico Pradera", "APR"), ("Westmoor Rovers", "WMR"), ("FC Altenau", "FCA"), ("Inter Calvari", "ICA"),
    ("Ajax Delfzee", "ADZ"), ("Celtic Rathmore", "CRM"), ("Racing Bellaire", "RBE"), ("Union Steinfeld", "UST"),
]

# distinct kit colours (BGR) with names for game.json readers
_COLOURS: dict[str, BGR] = {
    "red": (40, 30, 200), "white": (235, 235, 235), "blue": (170, 60, 20), "sky": (225, 170, 90),
    "yellow": (40, 215, 240), "black": (30, 30, 30), "orange": (20, 120, 245), "green": (40, 120, 20),
    "claret": (60, 20, 120), "purple": (130, 40, 110), "navy": (80, 30, 20), "grey": (120, 120, 120),
}
_GOALKEEPER_COLOURS = ["lime", "pink", "teal", "gold"]
_GK: dict[str, BGR] = {"lime": (40, 230, 170), "pink": (180, 110, 250), "teal": (140, 140, 20), "gold": (60, 180, 210)}


def _colour_distance(a: BGR, b: BGR) -> float:
    return float(np.linalg.norm(np.array(a, float) - np.array(b, float)))


def random_teams(rng: np.random.Generator) -> tuple[Team, Team]:
    """Two teams with different names and kits that are clearly apart from each other, from the referee's
    black and from the grass."""
    i, j = rng.choice(len(_CLUBS), 2, replace=False)
    names = list(_COLOURS)
    while True:
        shirts = rng.choice(names, 2, replace=False)
        a, b = _COLOURS[shirts[0]], _COLOURS[shirts[1]]
        if (
            _colour_distance(a, b) > 150
            and min(_colour_distance(c, REFEREE_KIT.shirt) for c in (a, b)) > 120
            and min(_colour_distance(c, _COLOURS["green"]) for c in (a, b)) > 90
        ):
            break
    teams = []
    gks = rng.choice(_GOALKEEPER_COLOURS, 2, replace=False)
    for club, shirt, gk in ((_CLUBS[i], shirts[0], gks[0]), (_CLUBS[j], shirts[1], gks[1])):
        s = _COLOURS[shirt]
        shorts = _COLOURS[str(rng.choice(["white", "black", "navy", shirt]))]
        socks = s if rng.random() < 0.6 else shorts
        g = _GK[gk]
        teams.append(Team(club[0], club[1], Kit(s, shorts, socks), Kit(g, (30, 30, 30), g)))
    return teams[0], teams[1]


def random_stadium(rng: np.random.Generator) -> Stadium:
    """A stadium with random dimensions beyond the pitch, grass colour and mowing, light and shadows."""
    g = np.array([52, 128, 62], float) * rng.uniform(0.85, 1.12) + rng.uniform(-8, 8, 3)
    sun = rng.uniform(-np.pi, np.pi)
    roof_shadow = None
    if rng.random() < 0.4:
        # a straight shadow edge across the far part of the pitch
        ang = rng.uniform(-0.3, 0.3)
        roof_shadow = (float(np.sin(ang)), -float(np.cos(ang)), float(rng.uniform(-15.0, 20.0)))
    return Stadium(
        side_board_y=float(34.0 + rng.uniform(4.0, 6.0)),
        end_board_x=float(52.5 + rng.uniform(4.5, 6.0)),
        near_track_y=float(34.0 + rng.uniform(4.0, 7.0)),
        stand_rake_deg=float(rng.uniform(28.0, 36.0)),
        grass_bgr=cast(BGR, tuple(int(v) for v in np.clip(g, 0, 255))),
        stripe_contrast=float(rng.uniform(0.035, 0.085)),
        cross_stripes=bool(rng.random() < 0.2),
        light_gradient=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.05, 0.05))),
        roof_shadow=roof_shadow,
        wear=float(rng.uniform(0.03, 0.25)),
        sun_direction=(float(np.cos(sun)), float(np.sin(sun))),
        shadow_length=float(rng.uniform(0.3, 1.2)),
        shadow_strength=float(rng.uniform(0.3, 0.55)),
    )

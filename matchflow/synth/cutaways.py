"""Cut-away shots of a broadcast: the director leaves the main camera for a few seconds at a time for a tight
shot of a player ("closeup") or a view of the stands ("crowd"), with hard cuts in and out.

Both are filmed from the main camera's position (a real camera of the prior), only aimed and zoomed
differently, so their homographies are true ones. A close-up fills a third to half of the frame height with
one player and shows no pitch marking; a crowd shot shows the stands, with at most a strip of grass at the
bottom of the frame and no marking. Pitch points are metres in SoccerNet's frame (z down).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matchflow.models.geometry.camera import (
    PinholeCamera,
    clip_polygon,
    look_at_rotation,
    normalize_homography,
    view_constraints,
)
from matchflow.models.geometry.pitch import PitchModel

from .director import BaseCamera
from .play import HalfPlay
from .stadium import Stadium

__all__ = ["SHOTS", "Cutaway", "plan_cutaways", "closeup_cameras", "crowd_cameras", "insert_cutaways"]

SHOTS = ("main", "closeup", "crowd")
_MIN_SECONDS, _MAX_SECONDS, _MEAN_SECONDS = 2.0, 5.0, 3.5
_MIN_MAIN_SECONDS = 3.0  # the main camera stays on at least this long between cut-aways, time permitting
_CLOSEUP_SHARE = 0.65  # of cut-aways that are close-ups
_CLOSEUP_HEIGHT = (1.0 / 3.0, 0.5)  # share of the frame height the framed player fills
_CROWD_WIDTH_M = (35.0, 60.0)  # width of the stands seen across the frame
_CROWD_GRASS_ROWS = 0.1  # grass may show in this bottom share of a crowd shot's rows, nowhere else


@dataclass(frozen=True)
class Cutaway:
    """A cut-away: its shot ("closeup" or "crowd"), first frame and the frame after its last; ``person`` is
    the player a close-up frames (-1 for a crowd shot)."""

    shot: str
    start: int
    end: int
    person: int = -1

    def as_dict(self) -> dict:
        return {"shot": self.shot, "start_frame": self.start, "end_frame": self.end, "person": self.person}


def _split(rng: np.random.Generator, total: int, n: int, low: int, high: int | None) -> np.ndarray:
    """``n`` random integer parts of ``total``, each in [low, high] (``high`` None: unbounded); needs
    n * low <= total <= n * high."""
    parts = np.full(n, low, dtype=np.int64)
    extra = total - n * low
    while extra > 0:
        room = np.full(n, extra, dtype=np.int64) if high is None else high - parts
        weights = rng.dirichlet(np.ones(n)) * (room > 0)
        add = np.minimum(rng.multinomial(extra, weights / weights.sum()), room)
        parts += add
        extra -= int(add.sum())
    return parts


def plan_cutaways(rng: np.random.Generator, frames: int, fps: int, share: float) -> list[Cutaway]:
    """Cut-aways over a half of ``frames`` frames taking ``share`` (0..1) of its time: segments of 2 to 5 s
    (one shorter segment when the whole share is less than 2 s), placed at random between stretches of main
    camera, about two in three of them close-ups (both kinds when there are two or more)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("the share of cut-aways must be within 0..1")
    total = int(round(share * frames))
    if total == 0:
        return []
    low, high = max(1, int(round(_MIN_SECONDS * fps))), max(1, int(round(_MAX_SECONDS * fps)))
    if total < low:
        lengths = np.array([total], dtype=np.int64)
    else:
        n = int(np.clip(round(total / (_MEAN_SECONDS * fps)), -(-total // high), total // low))
        lengths = _split(rng, total, n, low, high)
    n = len(lengths)
    main = frames - total
    gap = min(int(round(_MIN_MAIN_SECONDS * fps)), main // (n + 1))
    gaps = _split(rng, main, n + 1, gap, None)
    shots = np.where(rng.random(n) < _CLOSEUP_SHARE, "closeup", "crowd")
    if n >= 2 and len(set(shots)) == 1:
        shots[int(rng.integers(n))] = "crowd" if shots[0] == "closeup" else "closeup"
    out, at = [], 0
    for g, length, shot in zip(gaps[:-1], lengths, shots):
        at += int(g)
        out.append(Cutaway(str(shot), at, at + int(length)))
        at += int(length)
    return out


def _shows_lines(pitch: PitchModel, cams: Sequence[PinholeCamera], size: tuple[int, int]) -> bool:
    """Whether any of the cameras sees a pitch marking in its frame of ``size`` widened by a margin of 1% of
    the width on every side (first, last and middle frames tried first)."""
    margin = max(4, int(round(0.01 * size[0])))
    wide = (size[0] + 2 * margin, size[1] + 2 * margin)  # the same cameras, seeing a little further out
    n = len(cams)
    for i in dict.fromkeys([0, n - 1, n // 2, *range(n)]):
        cam = PinholeCamera(cams[i].focal_px, cams[i].rotation, cams[i].position, wide)
        if pitch.line_mask(normalize_homography(cam.homography()), wide).any():
            return True
    return False


def _turn(rotation: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """``rotation`` (world to camera) turned so that what lay on its optical axis lies along ``direction``
    (camera coordinates, z forward)."""
    d = direction / np.linalg.norm(direction)
    axis = np.cross([0.0, 0.0, 1.0], d)
    s, c = float(np.linalg.norm(axis)), float(d[2])
    if s < 1e-12:
        return rotation
    k = axis / s
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return (np.eye(3) + s * kx + (1.0 - c) * kx @ kx) @ rotation


# where the framed player's body centre sits, as shares of the frame width and height from its centre
_CLOSEUP_OFFSETS = ((0.0, 0.0), (0.0, -0.15), (0.0, 0.15), (-0.2, 0.0), (0.2, 0.0))


def closeup_cameras(
    rng: np.random.Generator, play: HalfPlay, pitch: PitchModel, base: BaseCamera, start: int, end: int,
    size: tuple[int, int], roll: float = 0.0,
) -> tuple[list[PinholeCamera], int] | None:
    """Cameras for frames ``start`` to ``end`` (exclusive) of a close-up from the main camera's position:
    a player near the ball (others when needed) followed with a long lens so that they fill a third to half
    of the frame height, framed so that no pitch marking is seen in any frame; and the player's id. None when
    no player can be framed so."""
    pos = np.asarray(base.camera.position, dtype=float)
    who = [k for k, p in enumerate(play.persons) if p.role != "referee"]
    dist = np.linalg.norm(play.position[start, who] - play.ball[start, :2], axis=1)
    order = [who[i] for i in np.argsort(dist + rng.exponential(6.0, len(who)))]
    frac = float(rng.uniform(*_CLOSEUP_HEIGHT))
    for k in order:
        height = play.persons[k].height
        feet = np.column_stack([play.position[start:end, k], np.zeros(end - start)])
        aims = feet + np.array([0.0, 0.0, -0.55 * height])
        centred = [look_at_rotation(pos, a, roll) for a in aims]
        (foot_px, head_px), _ = PinholeCamera(1.0, centred[0], pos, size).project(
            np.array([feet[0], feet[0] + [0.0, 0.0, -height]])
        )
        span = abs(foot_px[1] - head_px[1])
        if not np.isfinite(span) or span <= 0:
            continue
        for f in dict.fromkeys([frac, _CLOSEUP_HEIGHT[1]]):
            focal = f * size[1] / span
            for du, dv in _CLOSEUP_OFFSETS:
                # the camera turned so that the player's body sits (du, dv) off the frame's centre
                look = np.array([du * size[0] / focal, dv * size[1] / focal, 1.0])
                cams = [PinholeCamera(focal, _turn(r, look), pos, size) for r in centred]
                if not _shows_lines(pitch, cams, size):
                    return cams, k
    return None


def _grass_top_row(cam: PinholeCamera, stadium: Stadium, size: tuple[int, int]) -> float:
    """The highest image row (pixels from the top) where the camera sees grass; inf when it sees none."""
    h = cam.homography()
    x, y0, y1 = stadium.end_board_x, -stadium.side_board_y, stadium.near_track_y
    grass = np.array([[-x, y0], [x, y0], [x, y1], [-x, y1]])
    poly = clip_polygon(grass, view_constraints(h / np.abs(h).max(), size))
    if len(poly) < 3:
        return float("inf")
    q = np.column_stack([poly, np.ones(len(poly))]) @ h.T
    return float(np.min(q[:, 1] / q[:, 2]))


def crowd_cameras(
    rng: np.random.Generator, stadium: Stadium, base: BaseCamera, n: int, fps: int, size: tuple[int, int],
    roll: float = 0.0, tries: int = 40,
) -> list[PinholeCamera] | None:
    """Cameras for ``n`` frames of a crowd shot from the main camera's position: aimed at the far stand (or,
    one time in four, an end stand), 35 to 60 m of it across the frame, panning slowly along it; grass only
    in the bottom tenth of the frame and no pitch marking in any frame. None when no such view is found."""
    pos = np.asarray(base.camera.position, dtype=float)
    rake = np.radians(stadium.stand_rake_deg)
    x0, x1, y0, _ = stadium.ground_extent
    t = np.arange(n) / fps
    for _ in range(tries):
        up_share = rng.uniform(0.25, 0.6)
        width = rng.uniform(*_CROWD_WIDTH_M)
        speed = rng.uniform(-1.5, 1.5)
        if rng.random() < 0.75:  # far stand
            foot = np.array([rng.uniform(-50.0, 50.0), y0, 0.0])
            up, along = np.array([0.0, -np.cos(rake), -np.sin(rake)]), np.array([1.0, 0.0, 0.0])
        else:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            foot = np.array([x1 if sign > 0 else x0, rng.uniform(-25.0, 15.0), 0.0])
            up, along = np.array([sign * np.cos(rake), 0.0, -np.sin(rake)]), np.array([0.0, 1.0, 0.0])
        aims = foot + up_share * stadium.stand_depth * up + (speed * t)[:, None] * along
        focal = size[0] * float(np.linalg.norm(aims[0] - pos)) / width
        cams = [PinholeCamera(focal, look_at_rotation(pos, a, roll), pos, size) for a in aims]
        # the pitch origin well in front of the camera keeps the stored homographies well scaled
        if min(float(c.depth(np.zeros((1, 3)))[0]) for c in (cams[0], cams[-1])) < 5.0:
            continue
        if min(_grass_top_row(c, stadium, size) for c in (cams[0], cams[-1], cams[n // 2])) < (
            1.0 - _CROWD_GRASS_ROWS
        ) * size[1]:
            continue
        if not _shows_lines(stadium.pitch, cams, size):
            return cams
    return None


def insert_cutaways(
    rng: np.random.Generator, play: HalfPlay, stadium: Stadium, base: BaseCamera, cameras: list[PinholeCamera],
    share: float, size: tuple[int, int],
) -> tuple[list[PinholeCamera], list[str], list[Cutaway]]:
    """The main camera's per-frame ``cameras`` with cut-aways taking ``share`` of the time cut in: the
    cameras of every frame, each frame's shot (see :data:`SHOTS`) and the cut-aways made. A cut-away whose
    kind cannot be filmed cleanly is filmed as the other kind, or left to the main camera."""
    cams = list(cameras)
    shots = ["main"] * len(cams)
    done: list[Cutaway] = []
    roll = float(np.clip(base.camera.pan_tilt_roll[2], np.radians(-1.0), np.radians(1.0)))
    for cut in plan_cutaways(rng, len(cams), play.fps, share):
        made = None
        kinds = (cut.shot, "crowd" if cut.shot == "closeup" else "closeup")
        for kind in kinds:
            if kind == "closeup":
                got = closeup_cameras(rng, play, stadium.pitch, base, cut.start, cut.end, size, roll)
                if got is not None:
                    made = (got[0], Cutaway(kind, cut.start, cut.end, got[1]))
            else:
                crowd = crowd_cameras(rng, stadium, base, cut.end - cut.start, play.fps, size, roll)
                if crowd is not None:
                    made = (crowd, Cutaway(kind, cut.start, cut.end))
            if made is not None:
                break
        if made is None:
            continue
        cams[cut.start : cut.end] = made[0]
        shots[cut.start : cut.end] = [made[1].shot] * (cut.end - cut.start)
        done.append(made[1])
    return cams, shots, done

"""Simulated play of one half: 22 players and a referee moving over the pitch, and a ball passed between them.

Positions are pitch metres in SoccerNet's frame (origin at the centre spot, +y toward the main camera,
z down); the ball is its centre (z = -0.11 when it rolls on the grass). Players keep a formation that slides
with the ball; the ball is dribbled, passed along the grass or lofted; nobody runs faster than 8 m/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stadium import REFEREE_KIT, Kit, Team

__all__ = ["Person", "HalfPlay", "simulate_half", "BALL_RADIUS", "MAX_SPEED", "HAIR_STYLES"]

BALL_RADIUS = 0.11
MAX_SPEED = 8.0
_GRAVITY = 9.81
_MAX_ACCEL = 4.5
_TURN_RATE = 6.0  # rad/s

_FORMATIONS: dict[str, list[tuple[float, float]]] = {
    # (x toward the opponents' goal, y across), both in -1..1 of a half-pitch-sized block
    "4-4-2": [(-0.62, -0.7), (-0.68, -0.24), (-0.68, 0.24), (-0.62, 0.7), (-0.22, -0.68), (-0.28, -0.2),
              (-0.28, 0.2), (-0.22, 0.68), (0.1, -0.22), (0.06, 0.24)],
    "4-3-3": [(-0.62, -0.7), (-0.68, -0.24), (-0.68, 0.24), (-0.62, 0.7), (-0.34, 0.0), (-0.18, -0.4),
              (-0.18, 0.4), (0.1, -0.65), (0.14, 0.0), (0.1, 0.65)],
    "3-5-2": [(-0.66, -0.42), (-0.7, 0.0), (-0.66, 0.42), (-0.3, -0.78), (-0.3, -0.28), (-0.36, 0.0),
              (-0.3, 0.28), (-0.3, 0.78), (0.08, -0.2), (0.1, 0.22)],
}
# skin tones (BGR) from light to dark: a person's tone is drawn between two neighbours
_SKIN = [(150, 185, 230), (120, 160, 215), (95, 135, 190), (70, 105, 160), (50, 75, 120), (40, 55, 85), (30, 40, 60)]
# hair colours (BGR): black, dark brown, brown, auburn, red, blond, light blond, grey
_HAIR = [(20, 20, 25), (30, 45, 70), (40, 80, 130), (30, 60, 150), (40, 90, 190), (90, 160, 210), (150, 200, 230),
         (150, 150, 150)]
HAIR_STYLES = ("short", "long", "shaved")
# boot colours (BGR): black, white, and the bright colours of modern boots
_BOOTS = [(25, 25, 25), (235, 235, 235), (40, 230, 250), (60, 60, 230), (230, 120, 40), (200, 60, 210),
          (70, 200, 70), (20, 140, 250)]


@dataclass(frozen=True)
class Person:
    """Someone on the pitch: stable id over the half, team (0, 1, -1 for the referee), role
    ("player", "goalkeeper", "referee"), height in metres, top speed in m/s and looks: kit, skin, hair and
    boot colours (BGR), shirt ``number`` (0: none), long or short sleeves and a hair style of
    :data:`HAIR_STYLES`."""

    person: int
    team: int
    role: str
    height: float
    max_speed: float
    kit: Kit
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    number: int = 0
    boots: tuple[int, int, int] = (25, 25, 25)
    long_sleeves: bool = False
    hair_style: str = "short"


@dataclass
class HalfPlay:
    """Everything that moves during a half, one row per video frame.

    ``position`` (T, P, 2) metres, ``velocity`` (T, P, 2) m/s, ``heading`` (T, P) radians (the direction the
    body faces on the grass, atan2(dy, dx)), ``phase`` (T, P) gait phase in radians, ``ball`` (T, 3) the ball
    centre in metres, ``possessor`` (T,) the person with the ball (-1 while it travels).
    """

    fps: int
    persons: list[Person]
    position: np.ndarray
    velocity: np.ndarray
    heading: np.ndarray
    phase: np.ndarray
    ball: np.ndarray
    possessor: np.ndarray

    @property
    def frames(self) -> int:
        return len(self.ball)


def _looks(rng: np.random.Generator) -> dict:
    """Skin, hair and boots of one person, drawn from ``rng``: what tells teammates apart besides the number."""
    i = float(rng.uniform(0, len(_SKIN) - 1))
    lo = _SKIN[int(i)]
    hi = _SKIN[min(int(i) + 1, len(_SKIN) - 1)]
    skin = tuple(int(round(a + (i - int(i)) * (b - a))) for a, b in zip(lo, hi, strict=True))
    style = HAIR_STYLES[int(rng.choice(3, p=[0.6, 0.25, 0.15]))]
    return {
        "skin": skin, "hair": _HAIR[int(rng.integers(len(_HAIR)))], "hair_style": style,
        "boots": _BOOTS[int(rng.integers(len(_BOOTS)))], "long_sleeves": bool(rng.random() < 0.2),
    }


def _people(rng: np.random.Generator, teams: tuple[Team, Team]) -> list[Person]:
    # looks come from their own stream, so the play drawn from ``rng`` does not depend on them
    looks = rng.spawn(1)[0]
    out: list[Person] = []
    for t, team in enumerate(teams):
        numbers = [1] + [int(n) + 2 for n in looks.choice(98, 10, replace=False)]  # goalkeeper 1, outfield 2..99
        for k in range(11):
            gk = k == 0
            out.append(
                Person(
                    person=len(out), team=t, role="goalkeeper" if gk else "player",
                    height=float(rng.uniform(1.80, 1.90) if gk else rng.uniform(1.70, 1.88)),
                    max_speed=float(6.5 if gk else rng.uniform(7.0, MAX_SPEED)),
                    kit=team.goalkeeper_kit if gk else team.kit, number=numbers[k], **_looks(looks),
                )
            )
    ref = _looks(looks) | {"boots": _BOOTS[0], "long_sleeves": False}
    out.append(
        Person(person=len(out), team=-1, role="referee", height=float(rng.uniform(1.72, 1.86)), max_speed=7.0,
               kit=REFEREE_KIT, **ref)
    )
    return out


class _Pass:
    """The ball's flight from ``start`` to ``end`` (pitch metres) over ``duration`` seconds."""

    def __init__(self, start: np.ndarray, end: np.ndarray, duration: float, peak: float, receiver: int):
        self.start, self.end, self.duration, self.peak, self.receiver = start, end, duration, peak, receiver

    def ball(self, elapsed: float) -> np.ndarray:
        tau = min(max(elapsed / self.duration, 0.0), 1.0)
        if self.peak > 0:  # lofted: straight over the grass, parabola in height
            s, h = tau, 4.0 * self.peak * tau * (1.0 - tau)
        else:  # rolling: decelerates to a third of its starting speed
            s, h = tau * (2.0 - 0.8 * tau) / 1.2, 0.0
        xy = self.start + s * (self.end - self.start)
        return np.array([xy[0], xy[1], -BALL_RADIUS - h])


def simulate_half(
    rng: np.random.Generator, teams: tuple[Team, Team], frames: int, fps: int, team0_attacks: float
) -> HalfPlay:
    """Simulate ``frames`` frames at ``fps``; team 0 attacks toward x = +52.5 when ``team0_attacks`` is +1."""
    persons = _people(rng, teams)
    n = len(persons)
    dt = 1.0 / fps
    attack = np.array([team0_attacks] * 11 + [-team0_attacks] * 11 + [0.0])
    forms = [list(_FORMATIONS)[int(rng.integers(len(_FORMATIONS)))] for _ in range(2)]
    base = np.array([(-1.0, 0.0)] + _FORMATIONS[forms[0]] + [(-1.0, 0.0)] + _FORMATIONS[forms[1]] + [(0.0, 0.0)])
    top_speed = np.array([p.max_speed for p in persons])
    heights = np.array([p.height for p in persons])
    wander_amp = rng.uniform(1.0, 3.5, (n, 2, 2))
    wander_freq = 2 * np.pi / rng.uniform(5.0, 14.0, (n, 2, 2))
    wander_phase = rng.uniform(0, 2 * np.pi, (n, 2, 2))
    gk = np.array([p.role == "goalkeeper" for p in persons])

    def formation_target(ball_xy: np.ndarray, team_has_ball: np.ndarray, t: float) -> np.ndarray:
        bx = ball_xy[0] * attack  # ball x in each team's attacking frame
        push = np.where(team_has_ball, 8.0, -4.0)
        x_att = np.clip(base[:, 0] * 30.0 + 0.7 * bx + push, -47.0, 47.0)
        y = base[:, 1] * 26.0 + 0.3 * ball_xy[1]
        x_att = np.where(gk, -50.5 + np.clip(0.08 * (bx + 52.5), 0.0, 6.0), x_att)
        y = np.where(gk, np.clip(0.15 * ball_xy[1], -4.0, 4.0), y)
        wander = np.sum(wander_amp * np.sin(wander_freq * t + wander_phase), axis=2)
        wander[gk] *= 0.2
        out = np.stack([x_att * attack, y], axis=1) + wander
        # the referee runs a diagonal a dozen metres from the ball
        side = -1.0 if ball_xy[1] > 0 else 1.0
        out[-1] = ball_xy + np.array([-6.0 * np.sign(ball_xy[0] + 1e-6), 11.0 * side])
        out[:, 0] = np.clip(out[:, 0], -51.5, 51.5)
        out[:, 1] = np.clip(out[:, 1], -33.0, 33.0)
        return out

    pos = formation_target(np.zeros(2), np.zeros(n, bool), 0.0)
    pos[:22] += rng.normal(0, 1.0, (22, 2))
    vel = np.zeros((n, 2))
    heading = np.where(attack > 0, 0.0, np.pi) + rng.normal(0, 0.3, n)
    phase = rng.uniform(0, 2 * np.pi, n)

    # kick-off-like start: a central player of either team has the ball
    starter_team = int(rng.integers(2))
    cand = [k for k in range(11 * starter_team + 1, 11 * starter_team + 11)]
    possessor = int(min(cand, key=lambda k: np.linalg.norm(pos[k])))
    possession_end = rng.uniform(0.8, 2.0)
    flight: _Pass | None = None
    flight_t0 = 0.0
    blend_from: np.ndarray | None = None
    blend_t0 = 0.0
    ball = np.array([pos[possessor, 0], pos[possessor, 1], -BALL_RADIUS])

    out_pos = np.zeros((frames, n, 2))
    out_vel = np.zeros((frames, n, 2))
    out_head = np.zeros((frames, n))
    out_phase = np.zeros((frames, n))
    out_ball = np.zeros((frames, 3))
    out_poss = np.zeros(frames, np.int16)

    for f in range(frames):
        t = f * dt
        holder_team = persons[possessor].team if flight is None else persons[flight.receiver].team
        team_has_ball = np.array([p.team == holder_team for p in persons])
        target = formation_target(ball[:2], team_has_ball, t)
        speed_cap = top_speed.copy()

        if flight is None:
            p = possessor
            if persons[p].role != "goalkeeper":  # outfield players dribble forward; keepers hold the ball
                forward = np.array([attack[p], 0.0])
                target[p] = pos[p] + 6.0 * forward + np.array([0.0, 2.0 * np.sin(0.7 * t + p)])
                speed_cap[p] = min(speed_cap[p], 6.5)
            if t >= possession_end:
                flight = _choose_pass(rng, persons, pos, vel, p, attack, ball[:2])
                flight_t0 = t
                possessor = -1
        if flight is not None:
            target[flight.receiver] = flight.end
            if t - flight_t0 >= flight.duration:
                possessor = flight.receiver
                blend_from, blend_t0 = flight.ball(flight.duration), t
                possession_end = t + rng.uniform(0.8, 3.0)
                flight = None
        # the nearest opponent of the ball presses it
        holder = possessor if flight is None else flight.receiver
        opp = [k for k in range(22) if persons[k].team != persons[holder].team and persons[k].role == "player"]
        presser = min(opp, key=lambda k: np.linalg.norm(pos[k] - ball[:2]))
        target[presser] = ball[:2] + 1.2 * (pos[presser] - ball[:2]) / (np.linalg.norm(pos[presser] - ball[:2]) + 1e-6)

        # bounded acceleration toward a speed that arrives smoothly, bounded speed
        delta = target - pos
        dist = np.linalg.norm(delta, axis=1, keepdims=True)
        want = delta / np.maximum(dist, 1e-6) * np.minimum(speed_cap[:, None], 1.1 * dist)
        dv = want - vel
        dv_norm = np.linalg.norm(dv, axis=1, keepdims=True)
        vel = vel + dv * np.minimum(1.0, _MAX_ACCEL * dt / np.maximum(dv_norm, 1e-9))
        speed = np.linalg.norm(vel, axis=1, keepdims=True)
        vel = vel * np.minimum(1.0, speed_cap[:, None] / np.maximum(speed, 1e-9))
        pos = pos + vel * dt
        speed = np.linalg.norm(vel, axis=1)

        if flight is not None:
            ball = flight.ball(t - flight_t0)
        else:
            feet = pos[possessor] + 0.45 * np.array([np.cos(heading[possessor]), np.sin(heading[possessor])])
            ball = np.array([feet[0], feet[1], -BALL_RADIUS])
            if blend_from is not None:
                s = min(1.0, (t - blend_t0) / 0.3)
                ball = (1 - s) * blend_from + s * ball
                if s >= 1.0:
                    blend_from = None

        to_ball = np.arctan2(ball[1] - pos[:, 1], ball[0] - pos[:, 0])
        face = np.where(speed > 1.0, np.arctan2(vel[:, 1], vel[:, 0]), to_ball)
        turn = (face - heading + np.pi) % (2 * np.pi) - np.pi
        heading = heading + np.clip(turn, -_TURN_RATE * dt, _TURN_RATE * dt)
        stride = 1.2 + 0.25 * speed  # metres per gait cycle
        phase = (phase + 2 * np.pi * speed * dt / stride * (1.8 / heights)) % (2 * np.pi)

        out_pos[f], out_vel[f], out_head[f], out_phase[f] = pos, vel, heading, phase
        out_ball[f] = ball
        out_poss[f] = possessor
    return HalfPlay(fps, persons, out_pos, out_vel, out_head, out_phase, out_ball, out_poss)


def _choose_pass(
    rng: np.random.Generator,
    persons: list[Person],
    pos: np.ndarray,
    vel: np.ndarray,
    passer: int,
    attack: np.ndarray,
    ball_xy: np.ndarray,
) -> _Pass:
    team = persons[passer].team
    ahead = pos[passer, 0] * attack[passer]  # how far up the pitch the passer is, toward the opponents' goal
    if ahead > 27.0 and rng.random() < 0.5:  # a shot: the opponents' goalkeeper gathers it
        keeper = next(k for k in range(22) if persons[k].team != team and persons[k].role == "goalkeeper")
        end = pos[keeper] + rng.normal(0.0, 0.6, 2)
        dist = float(np.linalg.norm(end - ball_xy))
        lofted = rng.random() < 0.3
        duration = 0.5 + dist / 20.0 if lofted else max(0.3, dist / 24.0)
        peak = min(_GRAVITY * duration**2 / 8.0, 4.0) if lofted else 0.0
        return _Pass(np.array(ball_xy, dtype=float), end, duration, peak, keeper)
    keeper_kick = persons[passer].role == "goalkeeper"
    mates = [k for k in range(22) if persons[k].team == team and k != passer]
    d = np.array([np.linalg.norm(pos[k] - pos[passer]) for k in mates])
    progress = np.array([(pos[k, 0] - pos[passer, 0]) * attack[passer] for k in mates])
    # near the opponents' box the ball goes back or wide, elsewhere forward; goalkeepers kick long
    preferred = 35.0 if keeper_kick else 18.0
    score = -np.abs(d - preferred) / 8.0 + (-0.04 if ahead > 30.0 else 0.14) * progress
    score += np.array([-3.0 if persons[k].role == "goalkeeper" else 0.0 for k in mates])
    prob = np.exp(score - score.max())
    receiver = mates[int(rng.choice(len(mates), p=prob / prob.sum()))]
    dist = float(np.linalg.norm(pos[receiver] - pos[passer]))
    lofted = dist > 22.0 and (keeper_kick or rng.random() < 0.45)
    duration = 0.9 + dist / 22.0 if lofted else dist / float(np.clip(7.0 + 0.3 * dist, 8.0, 20.0))
    duration = max(duration, 0.35)
    end = pos[receiver] + vel[receiver] * 0.5 * duration
    if rng.random() < 0.13:  # intercepted: an opponent near the line takes it
        opp = [k for k in range(22) if persons[k].team != team and persons[k].role == "player"]
        mid = 0.5 * (pos[passer] + end)
        receiver = min(opp, key=lambda k: np.linalg.norm(pos[k] - mid))
        end = 0.5 * (pos[receiver] + mid)
    end = np.clip(end, [-50.5, -32.5], [50.5, 32.5])
    peak = min(_GRAVITY * duration**2 / 8.0, 14.0) if lofted else 0.0
    return _Pass(np.array(ball_xy, dtype=float), end, duration, peak, receiver)

"""The ``teams`` stage (game level): ``players.team`` for every detection of a half, one team per track
(:func:`matchflow.models.tracking.teams.assign_teams`).

Appearance clusters per half (``reid`` embeddings beside the kit colours, each unit length, or kit colours alone
with ``appearance: colour``), a vote per track,
third kits (by kit colour, with either appearance) as goalkeepers (in a penalty area or near a goal; they join
the team defending it) or referees (no team), a track mostly deepest in a penalty area as its goalkeeper, people
mostly off the field without a team. Team 0 is the team attacking toward +x in the first half, in both halves (teams
swap ends at half time); without calibrated positions the order of the two teams is arbitrary.

It also writes the half's ``tracks`` table: per track its first and last sampled frame, detections, team, role
(``cls``: player, goalkeeper, referee, other) and mean pitch position.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from matchflow.models.tracking.teams import TrackTeams
from matchflow.stages.base import GameStage, HalfData, StageParams
from matchflow.stages.tracking import embeddings_of_rows

_PLAYERS = ("players.det", "players.track", "players.pitch_x", "players.pitch_y", "players.on_field", "players.cls")
_TRACKS = ("tracks.first_frame", "tracks.last_frame", "tracks.frames", "tracks.team", "tracks.cls", "tracks.pitch_x",
           "tracks.pitch_y")
_COLOUR = ("players.color_r", "players.color_g", "players.color_b")


class TeamsParams(StageParams):
    """``stage_params.teams`` (see :class:`matchflow.models.tracking.teams.TeamParams`)."""

    appearance: Literal["reid", "colour"] = "reid"
    outlier: float = Field(3.0, gt=0, description="kit-colour distance (kit units) beyond which a track wears a third kit")
    third_keeper_share: float = Field(0.3, ge=0, le=1, description="share of a third-kit track's positions deepest "
                                      "in a penalty area that makes it a goalkeeper rather than a referee")
    keeper_share: float = Field(0.6, gt=0, le=1, description="share of a track's positions deepest in a penalty area "
                                "that makes it the goalkeeper")
    seed: int = 0


class TeamsStage(GameStage):
    """Teams per track (see the module docstring)."""

    name = "teams"
    Params = TeamsParams
    params: TeamsParams
    reads: tuple[str, ...] = (*_PLAYERS, *_COLOUR, "reid.det", "reid.row", "arrays/reid")
    writes: tuple[str, ...] = ("players.team", *_TRACKS)
    version = "4"  # 4: with reid, the teams are split on the embedding and the kit colour side by side

    def __init__(self, params: Mapping[str, Any] | StageParams | None = None) -> None:
        super().__init__(params)
        if self.params.appearance == "colour":
            self.reads = (*_PLAYERS, *_COLOUR)

    def process_half(self, half: HalfData) -> None:
        from matchflow.models.tracking.teams import TeamParams, assign_teams, team_appearance
        from matchflow.models.tracking.tracker import colour_features

        p = half.table("players")
        if len(p["frame"]) == 0:
            half.put_columns("players", team=np.zeros(0, np.int8))
            half.put_table("tracks", track=np.zeros(0, np.int32), first_frame=np.zeros(0, np.int32),
                           last_frame=np.zeros(0, np.int32), frames=np.zeros(0, np.int32))
            return
        track = np.asarray(p["track"], dtype=np.float64)
        if np.isnan(track).any():
            raise ValueError(f"game {half.ctx.game!r} half {half.ctx.half}: players rows without a track; "
                             "list the tracking stage before teams")
        frame = np.asarray(p["frame"], np.int64)
        rgb = np.stack([np.nan_to_num(np.asarray(p[c], np.float64), nan=128.0)
                        for c in ("color_r", "color_g", "color_b")], axis=1)
        colour = colour_features(rgb)
        appearance = team_appearance(colour, embeddings_of_rows(half, frame, np.asarray(p["det"], np.int64))
                                     if self.params.appearance == "reid" else None)
        ids = track.astype(np.int64)
        result = assign_teams(ids, appearance, np.asarray(p["pitch_x"], np.float64), p["on_field"],
                              np.asarray(p["cls"], dtype=object), half.ctx.half,
                              TeamParams(outlier=self.params.outlier, third_keeper_share=self.params.third_keeper_share,
                                         keeper_share=self.params.keeper_share, seed=self.params.seed),
                              colour=colour, pitch_y=np.asarray(p["pitch_y"], np.float64), frame=frame)
        team = result.of_rows(ids).astype(np.float64)
        team[team < 0] = np.nan  # null for referees and people off the field
        half.put_columns("players", team=team)
        half.put_table("tracks", **track_summary(ids, frame,
                                                 np.asarray(p["pitch_x"], np.float64),
                                                 np.asarray(p["pitch_y"], np.float64), result))


def track_summary(track: np.ndarray, frame: np.ndarray, pitch_x: np.ndarray, pitch_y: np.ndarray,
                  teams: TrackTeams) -> dict[str, np.ndarray]:
    """The ``tracks`` rows of a half: per track (sorted ids), its first and last sampled frame, detection count,
    team (NaN for none), role and mean pitch position (metres; NaN where it never had one)."""
    ids, inv, count = np.unique(track, return_inverse=True, return_counts=True)
    first = np.full(len(ids), np.iinfo(np.int64).max)
    last = np.full(len(ids), -1)
    np.minimum.at(first, inv, frame)
    np.maximum.at(last, inv, frame)
    means = []
    for v in (pitch_x, pitch_y):
        ok = np.isfinite(v)
        total = np.bincount(inv, np.where(ok, v, 0.0), len(ids))
        n = np.bincount(inv, ok.astype(float), len(ids))
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(n > 0, total / np.maximum(n, 1), np.nan))
    team = teams.team[np.searchsorted(teams.track, ids)].astype(np.float64)
    team[team < 0] = np.nan
    return {"track": ids.astype(np.int32), "first_frame": first.astype(np.int32), "last_frame": last.astype(np.int32),
            "frames": count.astype(np.int32), "team": team, "cls": teams.role[np.searchsorted(teams.track, ids)],
            "pitch_x": means[0].astype(np.float32), "pitch_y": means[1].astype(np.float32)}

"""Teams and roles per half, from appearance clusters, positions and the detector's classes.

1. Each track's appearance is the mean of its detections' unit vectors (ReID embeddings, or kit colours).
2. The tracks of people on the field are split in two by k-means (scikit-learn), each track weighted by its
   length, so that long tracks decide and fragments follow.
3. Tracks far from both kit centres (beyond ``outlier`` times the typical spread) wear a third kit: a goalkeeper
   when they keep near a goal (mean |x| beyond ``goal_zone`` metres, or the detector calls them goalkeeper
   more often than referee), otherwise a referee. A goalkeeper belongs to the team that defends the goal he
   keeps near. People mostly off the field are ``other`` and have no team.
4. Team 0 is the team attacking toward +x in the first half (so defending the goal at x = -52.5), and still team
   0 after half time, when teams swap ends: in half 1 the kit whose players stand on average at lower x is team
   0, in half 2 the one at higher x. Without pitch positions the order is the clusters' (arbitrary).

Every detection of a track gets the track's team: a vote over the whole track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TeamParams", "TrackTeams", "assign_teams", "ROLES"]

ROLES = ("player", "goalkeeper", "referee", "other")


@dataclass(frozen=True)
class TeamParams:
    """``outlier``: distance to the nearest kit centre, in units of the median distance of the team's tracks,
    beyond which a track wears a third kit; ``goal_zone``: metres from the centre line (|x|) beyond which a
    third-kit track counts as a goalkeeper; ``min_on_field``: the share of a track's detections on the field
    for it to be on the field; ``seed``: k-means seed."""

    outlier: float = 2.5
    goal_zone: float = 30.0
    min_on_field: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class TrackTeams:
    """Per track (ids ``track``, sorted): ``team`` (0, 1, or -1 for none) and ``role`` (one of :data:`ROLES`)."""

    track: np.ndarray
    team: np.ndarray
    role: np.ndarray

    def of_rows(self, track: np.ndarray) -> np.ndarray:
        """The team (int8, -1 for none) of each detection of tracks ``track`` (N,)."""
        return self.team[np.searchsorted(self.track, track)].astype(np.int8)


def _track_means(track: np.ndarray, values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (N, ...) per track id of ``ids`` (NaN-aware)."""
    inv = np.searchsorted(ids, track)
    v = values.reshape(len(values), -1).astype(np.float64)
    ok = np.isfinite(v)
    sums = np.zeros((len(ids), v.shape[1]))
    counts = np.zeros((len(ids), v.shape[1]))
    np.add.at(sums, inv, np.where(ok, v, 0.0))
    np.add.at(counts, inv, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def assign_teams(
    track: np.ndarray,
    appearance: np.ndarray,
    pitch_x: np.ndarray,
    on_field: np.ndarray,
    cls: np.ndarray,
    half: int,
    params: TeamParams | None = None,
) -> TrackTeams:
    """Teams and roles of the tracks of one half from its detections: ``track`` (N,) ids, ``appearance`` (N, D)
    unit vectors, ``pitch_x`` (N,) metres (NaN without calibration), ``on_field`` (N,) bool (NaN/None read as
    unknown: on the field), ``cls`` (N,) the detector's class names, ``half`` 1 or 2."""
    from sklearn.cluster import KMeans

    p = params or TeamParams()
    ids, counts = np.unique(track, return_counts=True)
    n = len(ids)
    team = np.full(n, -1, np.int8)
    role = np.full(n, "player", dtype=object)
    if n == 0:
        return TrackTeams(ids, team, role)
    feats = _track_means(track, appearance, ids)
    feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-9)
    field = np.array([True if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v) for v in on_field])
    share_on = _track_means(track, field.astype(np.float64), ids)[:, 0]
    mean_x = _track_means(track, np.asarray(pitch_x, np.float64), ids)[:, 0]
    cls = np.asarray(cls, dtype=object)
    votes = {c: _track_means(track, (cls == c).astype(np.float64), ids)[:, 0] for c in ("goalkeeper", "referee")}

    on = share_on >= p.min_on_field
    role[~on] = "other"
    members = np.flatnonzero(on)
    if len(members) < 2:
        return TrackTeams(ids, team, role)
    km = KMeans(n_clusters=2, n_init=10, random_state=p.seed)
    label = km.fit_predict(feats[members], sample_weight=counts[members].astype(np.float64))
    dist = np.linalg.norm(feats[members] - km.cluster_centers_[label], axis=1)
    # the typical spread of a kit: the weighted median distance of tracks to their centre
    order = np.argsort(dist)
    cum = np.cumsum(counts[members][order])
    spread = max(float(dist[order][np.searchsorted(cum, cum[-1] / 2)]), 1e-3)
    third = dist > p.outlier * spread
    kit = label.astype(np.int8)

    # which kit is team 0: in half 1 it defends x = -52.5 (stands at lower x on average), in half 2 x = +52.5
    weights = counts[members] * (~third)
    mx = [np.nansum(np.where(np.isfinite(mean_x[members]), mean_x[members], 0.0) * weights * (kit == k))
          / max(np.sum(weights * (kit == k) * np.isfinite(mean_x[members])), 1e-9) for k in (0, 1)]
    if np.all(np.isfinite(mx)) and (mx[0] > mx[1]) == (half == 1):
        kit = 1 - kit
    for m, k, is_third in zip(members, kit, third):
        if not is_third:
            team[m] = k
            continue
        near_goal = np.isfinite(mean_x[m]) and abs(mean_x[m]) >= p.goal_zone
        if near_goal or votes["goalkeeper"][m] > votes["referee"][m]:
            role[m] = "goalkeeper"
            if np.isfinite(mean_x[m]):  # team 0 keeps the -x goal in half 1 and the +x goal in half 2
                team[m] = 0 if (mean_x[m] < 0) == (half == 1) else 1
            else:
                team[m] = k
        else:
            role[m] = "referee"
    return TrackTeams(ids, team, role)

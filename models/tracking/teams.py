"""Teams and roles per half, from appearance clusters, positions and the detector's classes.

1. Each track's appearance is the mean of its detections' unit vectors (ReID embeddings, or kit colours).
2. The tracks of people on the field are split in two by k-means (scikit-learn), each track weighted by its
   length, so that long tracks decide and fragments follow.
3. A track wears a third kit when its detections' kit colours are typically (median) far from both kits
   (:func:`kit_outlier_scores`, beyond ``outlier`` units; kit colours with either appearance, since ReID
   embeddings differ between teammates as much as between kits), or when it stands mostly deepest in a penalty
   area (:func:`goalkeeper_shares`, at least ``keeper_share`` of its positions: a goalkeeper whose kit looks
   like a team's). Either needs ``min_frames`` detections. A third kit is a goalkeeper when it stands deepest in
   a penalty area for at least ``third_keeper_share`` of its positions (a referee hardly ever does, even in the
   last third of the pitch), or when the detector calls it goalkeeper more often than referee; otherwise a
   referee. A goalkeeper belongs to the team that defends the goal he keeps near. People
   mostly off the field are ``other`` and have no team.
4. Team 0 is the team attacking toward +x in the first half (so defending the goal at x = -52.5), and still team
   0 after half time, when teams swap ends: in half 1 the kit whose players stand on average at lower x is team
   0, in half 2 the one at higher x. Without pitch positions the order is the clusters' (arbitrary).

Every detection of a track gets the track's team: a vote over the whole track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matchflow.models.geometry.pitch import PENALTY_AREA_DEPTH, PENALTY_AREA_WIDTH, PitchModel

__all__ = ["TeamParams", "TrackTeams", "assign_teams", "team_appearance", "kit_outlier_scores", "goalkeeper_shares", "ROLES"]

ROLES = ("player", "goalkeeper", "referee", "other")


@dataclass(frozen=True)
class TeamParams:
    """``outlier``: the median kit-colour distance of a track's detections to the nearer kit, in that kit's units
    (:func:`kit_outlier_scores`), beyond which a track wears a third kit; ``third_keeper_share``: the share of a
    third-kit track's positions deepest in a penalty area (:func:`goalkeeper_shares`) that makes it a goalkeeper
    rather than a referee; ``keeper_share``: that share which makes any track a goalkeeper; ``min_frames``:
    detections a track needs for a third kit; ``min_on_field``: the share of a track's detections on the field
    for it to be on the field; ``seed``: k-means seed. ``outlier`` 3.0 and ``keeper_share`` 0.6 were set on a
    tuning game (seed 978), ``third_keeper_share`` 0.3 on two (seeds 978 and 979; 0.2 to 0.4 score the same),
    never on the held-out games of ``bench/tracking_synthetic.py``."""

    outlier: float = 3.0
    third_keeper_share: float = 0.3
    keeper_share: float = 0.6
    min_frames: int = 3
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


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x)
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, cum[-1] / 2)])


def kit_outlier_scores(colour: np.ndarray, kit_of_rows: np.ndarray, trim: float) -> np.ndarray:
    """(N,) how far each detection's kit colour is from the nearer of the two kits: the distance of ``colour``
    (N, D) to each kit's median colour (over the detections with ``kit_of_rows`` 0 or 1), in units of the median
    such distance of that kit's own detections. Medians, and a second pass without the kit's detections beyond
    ``trim`` units, so that a goalkeeper or referee clustered with a kit moves neither its centre nor its unit."""
    scores = np.full((len(colour), 2), np.inf)
    for k in (0, 1):
        own = kit_of_rows == k
        for _ in range(2):
            if not own.any():
                break
            d = np.linalg.norm(colour - np.median(colour[own], axis=0), axis=1)
            scores[:, k] = d / max(float(np.median(d[own])), 1e-6)
            own = own & (scores[:, k] <= trim)
    return scores.min(axis=1)


def goalkeeper_shares(frame: np.ndarray, pitch_x: np.ndarray, pitch_y: np.ndarray, on_field: np.ndarray,
                      pitch: PitchModel) -> np.ndarray:
    """(N,) 1 where a detection on the field stands in a penalty area and is the deepest person toward that goal
    in its frame (largest |x| on its side among the frame's people on the field with a pitch position), else 0
    (NaN without a position or off the field)."""
    out = np.full(len(frame), np.nan)
    ok = np.isfinite(pitch_x) & np.isfinite(pitch_y) & on_field
    box_x = pitch.half_length - PENALTY_AREA_DEPTH
    for f in np.unique(frame[ok]):
        rows = np.flatnonzero(ok & (frame == f))
        x, y = pitch_x[rows], pitch_y[rows]
        in_box = (np.abs(x) >= box_x) & (np.abs(y) <= PENALTY_AREA_WIDTH / 2)
        deepest = ((x > 0) & (x >= x.max())) | ((x < 0) & (x <= x.min()))
        out[rows] = (in_box & deepest).astype(float)
    return out


def team_appearance(colour: np.ndarray, embedding: np.ndarray | None = None) -> np.ndarray:
    """What splits the teams, per detection: the ReID ``embedding`` (N, D) beside the kit-colour vector ``colour``
    (N, D') (:func:`~matchflow.models.tracking.tracker.colour_features`), each of unit length, or the colour alone
    without embeddings. The embedding tells kits apart where colour is ambiguous (shade, similar kits), the colour
    holds where a changed crop moves the embedding."""
    colour = np.asarray(colour, np.float64)
    if embedding is None:
        return colour
    return np.concatenate([np.asarray(embedding, np.float64), colour], axis=1)


def assign_teams(
    track: np.ndarray,
    appearance: np.ndarray,
    pitch_x: np.ndarray,
    on_field: np.ndarray,
    cls: np.ndarray,
    half: int,
    params: TeamParams | None = None,
    *,
    colour: np.ndarray | None = None,
    pitch_y: np.ndarray | None = None,
    frame: np.ndarray | None = None,
) -> TrackTeams:
    """Teams and roles of the tracks of one half from its detections: ``track`` (N,) ids, ``appearance`` (N, D)
    unit vectors (what splits the teams), ``pitch_x`` / ``pitch_y`` (N,) metres (NaN without calibration),
    ``on_field`` (N,) bool (NaN/None read as unknown: on the field), ``cls`` (N,) the detector's class names,
    ``half`` 1 or 2; ``colour`` (N, D') kit-colour vectors (:func:`~matchflow.models.tracking.tracker.colour_features`;
    default ``appearance``) tell third kits; ``frame`` (N,) the sampled frame of each detection (with
    ``pitch_y``, for the goalkeeper's place)."""
    from sklearn.cluster import KMeans

    p = params or TeamParams()
    ids, counts = np.unique(track, return_counts=True)
    n = len(ids)
    team = np.full(n, -1, np.int8)
    role = np.full(n, "player", dtype=object)
    if n == 0:
        return TrackTeams(ids, team, role)
    inv = np.searchsorted(ids, track)
    feats = _track_means(track, appearance, ids)
    feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-9)
    field = np.array([True if v is None or (isinstance(v, float) and np.isnan(v)) else bool(v) for v in on_field])
    share_on = _track_means(track, field.astype(np.float64), ids)[:, 0]
    px = np.asarray(pitch_x, np.float64)
    mean_x = _track_means(track, px, ids)[:, 0]
    cls = np.asarray(cls, dtype=object)
    votes = {c: _track_means(track, (cls == c).astype(np.float64), ids)[:, 0] for c in ("goalkeeper", "referee")}
    if pitch_y is not None and frame is not None:
        keeper = _track_means(track, goalkeeper_shares(np.asarray(frame), px, np.asarray(pitch_y, np.float64), field,
                                                       PitchModel()), ids)[:, 0]
    else:
        keeper = np.full(n, np.nan)

    on = share_on >= p.min_on_field
    role[~on] = "other"
    members = np.flatnonzero(on)
    if len(members) < 2:
        return TrackTeams(ids, team, role)
    km = KMeans(n_clusters=2, n_init=10, random_state=p.seed)
    label = km.fit_predict(feats[members], sample_weight=counts[members].astype(np.float64))
    kit_of_track = np.full(n, -1)
    kit_of_track[members] = label
    # a third kit: the track's detections are typically (median) far from both kits' colours
    score = kit_outlier_scores(np.asarray(appearance if colour is None else colour, np.float64), kit_of_track[inv],
                               p.outlier)
    median_score = np.array([float(np.median(score[inv == m])) if m in set(members) else 0.0 for m in range(n)])
    long_enough = counts >= p.min_frames
    third_colour = long_enough & (median_score > p.outlier)
    # the detector's class: most of the track's detections called goalkeeper or referee, in a kit less typical
    # of its team than half the team's detections
    told = long_enough & (median_score > 1.0) & (np.maximum(votes["goalkeeper"], votes["referee"]) > 0.5)
    # a goalkeeper's place: in a penalty area and the deepest person toward that goal, most of the time
    in_goal = np.nan_to_num(keeper) >= p.keeper_share
    third = (third_colour | told | (in_goal & long_enough))[members]
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
        # where it stood: a referee is hardly ever the deepest person in a penalty area, a goalkeeper mostly
        near_goal = bool(in_goal[m] or (np.isfinite(keeper[m]) and keeper[m] >= p.third_keeper_share))
        if near_goal or votes["goalkeeper"][m] > votes["referee"][m]:
            role[m] = "goalkeeper"
            if np.isfinite(mean_x[m]):  # team 0 keeps the -x goal in half 1 and the +x goal in half 2
                team[m] = 0 if (mean_x[m] < 0) == (half == 1) else 1
            else:
                team[m] = k
        else:
            role[m] = "referee"
    return TrackTeams(ids, team, role)

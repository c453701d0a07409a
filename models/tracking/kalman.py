"""A constant-velocity Kalman filter of a player's position on the pitch (metres, SoccerNet frame).

State (x, y, vx, vy) in metres and metres per second; measurements are pitch positions (x, y) from the
calibrated foot point. Time steps are the seconds between sampled frames (0.5 s at 2 fps), so the process noise
is a white acceleration of ``accel`` m/s^2 (a sprinting player's change of pace).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PitchKalman"]


class PitchKalman:
    """One player's position and velocity on the pitch. ``noise``: the measurement's standard deviation in
    metres (calibration and foot-point error); ``accel``: the process noise, m/s^2."""

    def __init__(self, xy: np.ndarray, t: float, noise: float = 0.7, accel: float = 4.0) -> None:
        self.x = np.array([xy[0], xy[1], 0.0, 0.0])
        self.P = np.diag([noise**2, noise**2, 9.0, 9.0])  # speed unknown at first: 3 m/s
        self.t = t
        self.noise, self.accel = noise, accel

    def _transition(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        q = self.accel**2
        g = np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]]) * q
        Q = np.zeros((4, 4))
        Q[np.ix_([0, 2], [0, 2])] = g
        Q[np.ix_([1, 3], [1, 3])] = g
        return F, Q

    def predict(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The predicted position (2,) metres at time ``t`` seconds and its covariance (2, 2), without
        changing the state."""
        F, Q = self._transition(max(t - self.t, 0.0))
        x = F @ self.x
        P = F @ self.P @ F.T + Q
        return x[:2], P[:2, :2] + np.eye(2) * self.noise**2

    def update(self, xy: np.ndarray, t: float) -> None:
        """Move the state to time ``t`` and correct it with the measured position ``xy`` (metres)."""
        F, Q = self._transition(max(t - self.t, 0.0))
        x = F @ self.x
        P = F @ self.P @ F.T + Q
        S = P[:2, :2] + np.eye(2) * self.noise**2
        K = P[:, :2] @ np.linalg.inv(S)
        self.x = x + K @ (np.asarray(xy, dtype=float) - x[:2])
        self.P = (np.eye(4) - K @ np.eye(2, 4)) @ P
        self.t = t

    @property
    def position(self) -> np.ndarray:
        return self.x[:2].copy()

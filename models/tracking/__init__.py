"""Players through time: who is who over the sampled frames of a half, and which team each belongs to.

- ``kalman.py``: a constant-velocity Kalman filter of a position on the pitch (metres);
- ``tracker.py``: online association over the sampled frames (pitch motion, box overlap, appearance; camera
  cuts respected) giving every detection a track;
- ``teams.py``: teams by clustering appearance per half, a vote per track, and a role per track.
"""

"""Pitch and camera geometry: the pitch's markings and zones, pinhole cameras and homographies, the camera prior."""

"""Representations of a frame on the pitch: player localization, top views, their feature vectors and the
player graph."""

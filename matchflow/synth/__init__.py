"""Synthetic soccer broadcast corpus with ground truth (``matchflow synth``)."""

from .corpus import synthesize_corpus

__all__ = ["synthesize_corpus"]

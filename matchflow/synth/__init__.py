"""Synthetic soccer broadcast corpus with ground truth (``matchflow synth``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .corpus import synthesize_corpus

__all__ = ["synthesize_corpus"]


def __getattr__(name: str) -> Any:  # the corpus renderer (and its video encoder) loads on first use only
    if name == "synthesize_corpus":
        from .corpus import synthesize_corpus

        return synthesize_corpus
    raise AttributeError(name)

"""Evaluating re-identification models on a :class:`ReidSet`: rank-1 and mAP with action-scoped matching
(:func:`matchflow.models.reid.metric.scoped_retrieval`; queries: the query views, gallery: the other views of the
same action), and the embedding speed."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from matchflow.models.reid.embedder import Embedder
from matchflow.models.reid.metric import scoped_retrieval
from matchflow.training.reid.data import ReidSet
from matchflow.training.reid.train import fit_set

__all__ = ["embed_set", "evaluate_reid"]


def embed_set(embedder: Embedder, data: ReidSet) -> tuple[np.ndarray, float]:
    """Embeddings (n, dim) of every crop of ``data`` (resized to the model's input) and crops per second."""
    fitted = fit_set(data, tuple(embedder.input_size))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    emb = embedder.embed_crops(fitted.crops, fitted.heatmaps.astype(np.float32) if embedder.needs_parts else None)
    seconds = time.perf_counter() - t0
    return emb, len(data) / seconds if seconds > 0 else 0.0


def evaluate_reid(embedder: Embedder, data: ReidSet) -> dict[str, Any]:
    """Rank-1, mAP (action-scoped) and speed of ``embedder`` on ``data``."""
    emb, speed = embed_set(embedder, data)
    report = scoped_retrieval(emb, data.identity, data.action, data.query)
    return {"model": embedder.model, "weights": str(embedder.weights_path) if embedder.weights_path else None,
            "sha256": embedder.sha256, "data": data.source, "crops": len(data), **report,
            "crops_per_second": round(speed, 1)}

"""Re-identification metrics with scoped matching: each query is ranked against the gallery of its own action
only (SoccerNet-ReID's protocol: identities are valid within an action), by cosine similarity.

Rank-1: the share of queries whose most similar gallery item is the same identity; mAP: the mean over queries of
the average precision of that ranking. Queries without a true match in their gallery are left out (and counted).
"""

from __future__ import annotations

import numpy as np

__all__ = ["scoped_retrieval"]


def scoped_retrieval(
    embeddings: np.ndarray, identity: np.ndarray, action: np.ndarray, query: np.ndarray, gallery: np.ndarray | None = None,
) -> dict[str, float | int]:
    """Rank-1 and mAP of ``embeddings`` (n, D; L2-normalised) for the items ``query`` (bool, n) against the items
    ``gallery`` (bool, n; default: every non-query item) of the same ``action``; ``identity`` (n,) labels.

    Returns ``rank1``, ``mAP``, ``queries`` (evaluated), ``queries_without_match``, ``gallery_mean`` (gallery
    items per evaluated query).
    """
    emb = np.asarray(embeddings, np.float32)
    query = np.asarray(query, bool)
    gallery = ~query if gallery is None else np.asarray(gallery, bool)
    hits, aps, sizes, unmatched = [], [], [], 0
    for a in np.unique(action[query]):
        q = np.flatnonzero(query & (action == a))
        g = np.flatnonzero(gallery & (action == a))
        if len(g) == 0:
            unmatched += len(q)
            continue
        sim = emb[q] @ emb[g].T
        for i, qi in enumerate(q):
            match = identity[g] == identity[qi]
            if not match.any():
                unmatched += 1
                continue
            order = np.argsort(-sim[i], kind="stable")
            m = match[order]
            hits.append(bool(m[0]))
            ranks = np.flatnonzero(m) + 1
            aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
            sizes.append(len(g))
    return {
        "rank1": float(np.mean(hits)) if hits else float("nan"),
        "mAP": float(np.mean(aps)) if aps else float("nan"),
        "queries": len(hits),
        "queries_without_match": unmatched,
        "gallery_mean": float(np.mean(sizes)) if sizes else 0.0,
    }

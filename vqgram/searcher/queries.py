"""Word counts -> a weighted term query (the part of a search that is the same for every engine)."""
from __future__ import annotations

import math


def term_weights(counts: dict[str, int], max_terms: int | None = None) -> dict[str, float]:
    """Weight each query word by 1 + ln(count); keep the `max_terms` heaviest (ties by word).

    Pruning to the heaviest terms is the speed knob: the engine visits fewer
    posting lists, at some cost in recall.
    """
    if max_terms is not None and max_terms < 1:
        raise ValueError(f"max_terms={max_terms} must be at least 1")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_terms is not None:
        ranked = ranked[:max_terms]
    return {w: 1.0 + math.log(c) for w, c in ranked if c > 0}

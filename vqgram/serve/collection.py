"""The collection as the page's first screen shows it: every document, or those a filter passes, newest
first (by the file's mtime) or in a seeded random order, a page at a time.

The order is made once per (order, seed, filter) over one commit's `DocTable`
(an argsort of its columns) and kept, so paging through it costs a slice.
"""
from __future__ import annotations

import numpy as np

from ..indexer.backend import DocTable, hits_json
from ..indexer.filters import mask, parse_filter

ORDERS = ("newest", "random")
_KEPT_ORDERS = 16


class Collection:
    """One commit's documents, paged in a chosen order."""

    def __init__(self, table: DocTable):
        self.table = table
        self._orders: dict[tuple[str, int, str], np.ndarray] = {}

    def page(self, order: str = "newest", seed: int = 0, offset: int = 0, limit: int = 60,
             filter: str | None = None) -> dict:
        """{"total", "offset", "order", "seed", "items"}: `limit` documents from `offset` on, as hits_json
        gives them (score 0, ranked from offset + 1) with their `mtime`. ValueError for an unknown order or
        a bad filter."""
        if order not in ORDERS:
            raise ValueError(f"order={order!r}; choose one of: {', '.join(ORDERS)}")
        if offset < 0:
            raise ValueError(f"offset={offset} must be 0 or more")
        rows = self._order(order, seed, filter or "")
        chosen = rows[offset:offset + limit]
        items = hits_json([self.table.hit(int(r)) for r in chosen], start=offset + 1)
        for item, r in zip(items, chosen):
            item["mtime"] = float(self.table.mtime[r])
        return {"total": len(rows), "offset": offset, "order": order, "seed": seed, "items": items}

    def _order(self, order: str, seed: int, filter: str) -> np.ndarray:
        key = (order, seed if order == "random" else 0, filter)
        rows = self._orders.get(key)
        if rows is None:
            table = self.table
            rows = np.flatnonzero(mask(parse_filter(filter), table)) if filter else np.arange(len(table))
            if order == "newest":
                rows = rows[np.lexsort((table.ids[rows], -table.mtime[rows]))]  # ties by id: a stable order
            else:
                rows = rows[np.random.default_rng(seed).permutation(len(rows))]
            if len(self._orders) >= _KEPT_ORDERS:
                self._orders.clear()
            self._orders[key] = rows
        return rows

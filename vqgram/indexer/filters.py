"""Metadata filters: one small query language, parsed once, run by every engine and by exact scans.

    label:church AND width:[1000 TO *]
    (label:tench OR label:"golf ball") AND NOT folder:rejects
    path:/photos/2024/ AND mtime:[2024-01-01 TO 2024-07-01}

Clauses: `label:` and `id:` match exactly; `path:` is a prefix of the stored
(absolute) path; `folder:NAME` matches a folder of that name anywhere in the
path; `width:`, `height:`, `size:` (bytes) and `mtime:` (seconds since 1970,
or an ISO date/time read as UTC) take a value or a range, `[` `]` inclusive,
`{` `}` exclusive, `*` open. Clauses join with AND, OR, NOT and parentheses;
two clauses side by side are an error (Lucene would OR them, Tantivy too:
a filter that silently widens is worse than a message).

`parse_filter` gives a tree of frozen records; each engine turns the tree
into its own filter clause (tantivy_filter.py, lucene_filter.py), and `mask`
evaluates it over a `DocTable` for exact scans of the embedding matrix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Union

import numpy as np

from .backend import DocTable

EXACT_FIELDS = ("label", "id")
INT_FIELDS = ("width", "height", "size")
FIELDS = ("label", "id", "path", "folder", *INT_FIELDS, "mtime")


@dataclass(frozen=True)
class Match:
    field: str  # label or id
    value: str


@dataclass(frozen=True)
class Prefix:
    """The stored path starts with `value`."""

    value: str


@dataclass(frozen=True)
class Folder:
    """A folder named `name` (or a chain 'a/b') appears in the stored path."""

    name: str


@dataclass(frozen=True)
class Range:
    field: str  # width, height, size (int) or mtime (float)
    lo: float | None
    hi: float | None
    include_lo: bool = True
    include_hi: bool = True


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: object


Filter = Union[Match, Prefix, Folder, Range, And, Or, Not]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<open>\() | (?P<close>\)) |
      (?P<field>[A-Za-z_]+):(?P<value>"(?:[^"\\]|\\.)*" | [\[{][^\]}]*[\]}] | [^\s()]+) |
      (?P<word>[^\s()]+)
    )""", re.X)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, object]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                break
            pos = m.end()
            if m["open"]:
                self.tokens.append(("(", None))
            elif m["close"]:
                self.tokens.append((")", None))
            elif m["field"]:
                self.tokens.append(("clause", self._clause(m["field"], m["value"])))
            elif m["word"] in ("AND", "OR", "NOT"):
                self.tokens.append((m["word"], None))
            else:
                self.fail(f"{m['word']!r} is not FIELD:VALUE, AND, OR, NOT or a parenthesis")
        self.at = 0

    def fail(self, why: str):
        raise ValueError(f"bad filter {self.text!r}: {why} (fields: {', '.join(FIELDS)}; "
                         "e.g. 'label:cats AND width:[1000 TO *]')")

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, object]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Filter:
        if not self.tokens:
            self.fail("it is empty")
        node = self.either()
        if self.peek() is not None:
            kind = self.peek()
            self.fail("unmatched ')'" if kind == ")" else "write AND or OR between two clauses")
        return node

    def either(self) -> Filter:
        parts = [self.both()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def both(self) -> Filter:
        parts = [self.unary()]
        while self.peek() == "AND":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Filter:
        kind = self.peek()
        if kind is None:
            self.fail("it ends where a clause should follow")
        kind, value = self.take()
        if kind == "NOT":
            return Not(self.unary())
        if kind == "(":
            node = self.either()
            if self.peek() != ")":
                self.fail("a '(' is never closed")
            self.take()
            return node
        if kind == "clause":
            return value
        self.fail(f"{kind!r} where a clause should be")

    def _clause(self, field: str, raw: str) -> Filter:
        if field not in FIELDS:
            self.fail(f"unknown field {field!r}")
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif raw[0] in "[{":
            return self._range(field, raw)
        if not raw:
            self.fail(f"{field}: needs a value")
        if field in EXACT_FIELDS:
            return Match(field, raw)
        if field == "path":
            return Prefix(raw)
        if field == "folder":
            return Folder(raw.strip("/"))
        value = self._number(field, raw)
        return Range(field, value, value)

    def _range(self, field: str, raw: str) -> Range:
        if field not in (*INT_FIELDS, "mtime"):
            self.fail(f"{field}: takes a value, not a range")
        parts = raw[1:-1].split()
        if len(parts) != 3 or parts[1] != "TO":
            self.fail(f"{field}:{raw} is not a range like [LOW TO HIGH] (* for open)")
        lo, hi = (None if p == "*" else self._number(field, p) for p in (parts[0], parts[2]))
        return Range(field, lo, hi, raw[0] == "[" or lo is None, raw[-1] == "]" or hi is None)

    def _number(self, field: str, raw: str) -> float:
        try:
            return int(raw) if field in INT_FIELDS else float(raw)
        except ValueError:
            pass
        if field == "mtime":
            try:
                when = datetime.fromisoformat(raw)
            except ValueError:
                self.fail(f"mtime:{raw} is neither seconds since 1970 nor an ISO date like 2024-01-31")
            return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
        self.fail(f"{field}:{raw} is not a whole number")


@lru_cache(maxsize=256)
def parse_filter(text: str) -> Filter:
    """The filter tree of `text`; ValueError (one line, naming the text) when it does not parse."""
    return _Parser(text).parse()


def mask(where: Filter, table: DocTable) -> np.ndarray:
    """Which rows of `table` pass the filter (bool array): the same answer the engines give."""
    if isinstance(where, Match):
        return table.column(where.field) == where.value
    if isinstance(where, Prefix):
        return np.char.startswith(table.paths, where.value)
    if isinstance(where, Folder):
        return np.char.find(table.paths, f"/{where.name}/") >= 0
    if isinstance(where, Range):
        values = table.column(where.field)
        keep = np.ones(len(values), dtype=bool)
        if where.lo is not None:
            keep &= values >= where.lo if where.include_lo else values > where.lo
        if where.hi is not None:
            keep &= values <= where.hi if where.include_hi else values < where.hi
        return keep
    if isinstance(where, And):
        return np.logical_and.reduce([mask(p, table) for p in where.parts])
    if isinstance(where, Or):
        return np.logical_or.reduce([mask(p, table) for p in where.parts])
    if isinstance(where, Not):
        return ~mask(where.part, table)
    raise TypeError(f"not a filter: {where!r}")


def rows_passing(where: Filter | None, table: DocTable, ids: np.ndarray) -> np.ndarray | None:
    """A bool mask over `ids` (documents named in another order, e.g. an embedding matrix's rows);
    None when there is no filter. Ids missing from the table do not pass."""
    if where is None:
        return None
    passing = mask(where, table)
    pos = np.searchsorted(table.ids, ids)
    pos = np.minimum(pos, max(len(table.ids) - 1, 0))
    found = (table.ids[pos] == ids) if len(table.ids) else np.zeros(len(ids), dtype=bool)
    return found & passing[pos] if len(table.ids) else found

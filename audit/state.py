"""The audit's dataset-level state, taken out of one auditor and merged into another.

A distributed audit (audit/distributed.py) runs one auditor per worker over partitions of the pairs cut
by code; after each partition the worker takes the state its auditor gathered (`Auditor.take_state`:
counts, the first malformed lines, every check's counters, the dataset tally) and ships it; the driver
merges the partitions' states into one auditor (`Auditor.merge_state`) and summarises that auditor
exactly as a local audit is summarised. Nothing here re-reads pairs: a state is counters, capped lists
and a bounded sample, whatever the size of the partition.

The merge is exact: a local audit and the merge of the same pairs audited partition by partition give
the same summary (tests/test_ray_merge.py), because
- counters add up, sets unite, capped lists keep what a single stream would have kept (the first N by
  input line), and the mention sample is a bottom-k sample keyed by input line (audit/tally.py);
- everything order-dependent between pairs (exact and near duplicates, a code's diversity) depends on
  pairs of one code only, and a partition holds every pair of its codes, in input order.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


def merge_value(mine: Any, theirs: Any) -> Any:
    """`theirs` added into `mine` (which may be changed in place); returns the merged value.

    Numbers add, Counters add, sets unite, lists of numbers add element by element (histogram bins),
    dicts merge key by key with the same rules."""
    if isinstance(mine, bool) or isinstance(theirs, bool):
        raise TypeError("a flag cannot be merged by adding it")
    if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)):
        return mine + theirs
    if isinstance(mine, Counter):
        mine.update(theirs)
        return mine
    if isinstance(mine, set):
        mine |= theirs
        return mine
    if isinstance(mine, list) and isinstance(theirs, list):
        if len(mine) != len(theirs):
            raise ValueError(f"cannot merge lists of {len(mine)} and {len(theirs)} bins")
        return [merge_value(a, b) for a, b in zip(mine, theirs)]
    if isinstance(mine, dict):
        for key, value in theirs.items():
            mine[key] = merge_value(mine[key], value) if key in mine else copy.deepcopy(value)
        return mine
    raise TypeError(f"cannot merge {type(mine).__name__} with {type(theirs).__name__}")


def empty_like(value: Any) -> Any:
    """A fresh, empty value of the same kind (what an attribute is reset to once its state is taken)."""
    if isinstance(value, bool):
        raise TypeError("a flag has no empty value")
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, defaultdict):
        return defaultdict(value.default_factory)
    if isinstance(value, (Counter, set, dict)):
        return type(value)()
    raise TypeError(f"no empty value for {type(value).__name__}")


def plain(value: Any) -> Any:
    """Nested defaultdicts as plain dicts (their factories may be lambdas, which pickle cannot carry)."""
    if isinstance(value, Counter):
        return Counter(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass
class AuditState:
    """What one auditor gathered over the pairs it saw; `Auditor.merge_state` adds it to another."""

    accepted: int = 0
    rejected: int = 0
    warned: int = 0
    malformed_count: int = 0
    malformed: list[Any] = field(default_factory=list)  # reader.Malformed, the first MAX_MALFORMED_LISTED by line
    timings: dict[str, float] = field(default_factory=dict)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # check name -> Check.take_state()
    tally: dict[str, Any] = field(default_factory=dict)  # DatasetTally.take_state()

    @property
    def decisions(self) -> int:
        return self.accepted + self.rejected + self.malformed_count

"""Tolerant readers for the JSON the audit and the evaluation write: a missing or mistyped figure
becomes None (shown as "n/a"), never an exception, so a report renders from any output folder."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from clinassay.audit.checks import CHECK_NAMES
from clinassay.terminology.languages import LANGUAGES

# The audit's own check order (its CHECKS), then the dataset-level bias figures.
CHECK_ORDER = (*CHECK_NAMES, "bias")


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def ratio(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


def short_value(value: Any, *, limit: int = 160) -> str:
    """A figure in a few characters: numbers rounded, containers as compact JSON, long text cut."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten(data: Any, *, prefix: str = "", depth: int = 2, limit: int = 40) -> list[tuple[str, str]]:
    """Nested figures as (dotted key, short value) rows, at most `limit` of them."""
    rows: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        return [(prefix or "value", short_value(data))]
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value and depth > 1:
            rows.extend(flatten(value, prefix=name, depth=depth - 1, limit=limit))
        else:
            rows.append((name, short_value(value)))
        if len(rows) >= limit:
            return rows[:limit]
    return rows


def ordered_languages(names: Iterable[str]) -> list[str]:
    names = set(names)
    known = [lang for lang in LANGUAGES if lang in names]
    return known + sorted(names - set(known))


def ordered_checks(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return [c for c in CHECK_ORDER if c in names] + sorted(c for c in names if c not in CHECK_ORDER)

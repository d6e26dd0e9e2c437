"""A tolerant parser for model replies: accepts the usual deviations, returns [] on garbage.

Models asked for `{"mentions": [...]}` also answer with a bare list, wrap JSON in code fences, add
a sentence after it, stop mid-list (small models hit max_tokens), or fall back to a numbered
list. The structure is validated with pydantic; anything that cannot be read becomes an empty
result, and the caller keeps the raw text as a reject. This function never raises on bad text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field, ValidationError

MAX_MENTION_CHARS = 300


class MentionList(BaseModel):
    """The structured reply every prompt asks for (also sent as `response_format`)."""

    mentions: list[str] = Field(min_length=1)


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+(.+?)\s*$")
_QUOTED = re.compile(r'"((?:[^"\\\n]|\\.)+)"')


def parse_mentions(text: str | None, *, prefill: str = "") -> list[str]:
    """Mentions found in a reply, cleaned, in order, without duplicates; [] when there are none."""
    if not text or not text.strip():
        return []
    raw = prefill + text
    for candidate in _candidates(raw):
        items = _from_json(candidate)
        if items:
            return _clean(items)
    if prefill:
        # A completion that stopped mid-list: take the complete quoted strings it wrote.
        items = [t for t in (_unquote(m) for m in _QUOTED.findall(raw.split("\n\n", 1)[0])) if t is not None]
        if items:
            return _clean(items)
    return _clean(_from_lines(text))


def _candidates(text: str) -> list[str]:
    """JSON-looking pieces of the reply, most likely first."""
    found = [m.strip() for m in _FENCE.findall(text)]
    stripped = text.strip()
    found.append(stripped)
    for opener, closer in (("{", "}"), ("[", "]")):
        start = stripped.find(opener)
        end = stripped.rfind(closer)
        if 0 <= start < end:
            found.append(stripped[start : end + 1])
        if start >= 0:
            balanced = _balanced(stripped, start, opener, closer)
            if balanced:
                found.append(balanced)
    return found


def _balanced(text: str, start: int, opener: str, closer: str) -> str | None:
    """The first balanced {...} or [...] from `start`, string-aware (drops text after it)."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def _unquote(body: str) -> str | None:
    """A JSON string's body decoded (escapes and all), None when it is not one (a cut \\u escape)."""
    try:
        return json.loads(f'"{body}"', strict=False)
    except ValueError:
        return None


def _from_json(candidate: str) -> list[str]:
    try:
        data = json.loads(candidate)
    except (ValueError, RecursionError):  # garbage, a 5,000-digit number, or [[[[... nested too deep
        return []
    return _items(data)


def has_lone_surrogate(text: str) -> bool:
    """JSON may carry "\\ud800" alone: not text, and not writable as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(text: str) -> str:
    """`text` safe to write as UTF-8: lone surrogates become their backslash escape (for raw replies)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if has_lone_surrogate(text) else text


def _items(data: Any) -> list[str]:
    if isinstance(data, dict):
        for key in ("mentions", "items", "examples", "results", "data"):
            if key in data:
                data = {"mentions": _as_texts(data[key])}
                break
        else:
            return []
    elif isinstance(data, list):
        data = {"mentions": _as_texts(data)}
    else:
        return []
    try:
        return MentionList.model_validate(data).mentions
    except ValidationError:
        return []


def _as_texts(values: Any) -> list[str]:
    """Strings, or objects carrying one under a usual key ({"mention": ...}, {"text": ...})."""
    if not isinstance(values, list):
        return []
    texts = []
    for v in values:
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, dict):
            for key in ("mention", "text", "term"):
                if isinstance(v.get(key), str):
                    texts.append(v[key])
                    break
    return texts


def _from_lines(text: str) -> list[str]:
    """A numbered or bulleted list, the last resort before giving up."""
    items = []
    for line in text.splitlines():
        m = _LIST_ITEM.match(line)
        if m:
            items.append(m.group(1).strip().strip('"').strip("'").strip())
    return items if len(items) >= 1 else []


def _clean(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        text = " ".join(item.split()).strip(" \"'`,;")
        key = text.casefold()
        if not text or len(text) > MAX_MENTION_CHARS or key in seen:
            continue
        if not any(ch.isalpha() for ch in text):
            continue
        seen.add(key)
        out.append(text)
    return out

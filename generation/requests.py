"""One planned call to one generator, its stable key, and what a prompt may show about a code.

The key (model, prompt hash, code, language, sample index, seed, task) is what resume matches on:
the same config over the same terminology always yields the same keys, and any change to a prompt
changes its hash and so its key.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from clinassay.generation.config import GeneratorKind
from clinassay.generation.prompts import Prompt
from clinassay.generation.records import Task
from clinassay.terminology.protocol import TerminologyLike

MAX_SIBLINGS_IN_PROMPT = 8
MAX_EXCLUDES_IN_PROMPT = 8


@dataclass(frozen=True)
class Request:
    """One call to one generator. For a hard negative, `code` is the sibling the mentions belong to
    and `negative_of` the code they must not be confused with."""

    model: str
    litellm_model: str | None
    kind: GeneratorKind
    """The generator's kind, as provenance: the run asks the generator itself what to do."""
    task: Task
    code: str
    language: str
    sample_index: int
    seed: int
    temperature: float | None
    n: int
    """Mentions asked for; the terminology generator's: the labels it holds. The pairs it should make."""
    prompt: Prompt | None = None
    negative_of: str | None = None
    static_mentions: tuple[tuple[str, str], ...] = ()
    """Terminology generator only: (text, label source) pairs taken from the terminology."""
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            object.__setattr__(self, "key", request_key(self))

    @property
    def prompt_hash(self) -> str:
        """The rendered prompt's hash; for the terminology generator, a hash of the labels used."""
        if self.prompt is not None:
            return self.prompt.prompt_hash
        return hashlib.sha256(repr(self.static_mentions).encode("utf-8")).hexdigest()[:16]


def request_key(r: Request) -> str:
    h = hashlib.sha256()
    for part in (r.model, r.litellm_model or "", r.prompt_hash, r.code, r.language, str(r.sample_index),
                 str(r.seed), r.task, r.negative_of or ""):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:24]


def prompt_context(term: TerminologyLike, code: str, language: str, *, n: int = 5, other: str | None = None) -> dict[str, Any]:
    """Everything a template may show about a code: titles, parent, siblings, inclusions, excludes."""
    c = term.get(code)
    parent = term.find(c.parent) if getattr(c, "parent", None) else None
    siblings = [term.get(s) for s in term.siblings(code) if s != c.code][:MAX_SIBLINGS_IN_PROMPT]
    excludes = list(c.excludes1) + list(c.excludes2)
    ctx: dict[str, Any] = {
        "code": c,
        "language": language,
        "n": n,
        "target_label": _native_label(term, c.code, language),
        "parent": parent,
        "siblings": siblings,
        "excludes": excludes[:MAX_EXCLUDES_IN_PROMPT],
    }
    if other is not None:
        o = term.get(other)
        ctx["other"] = o
        ctx["other_label"] = _native_label(term, o.code, language)
    return ctx


def _native_label(term: TerminologyLike, code: str, language: str) -> str | None:
    if language == "en":
        return None  # the English title is shown already
    label = term.label(code, language)
    if label is None or label.precision != "exact":
        return None
    return label.text


def pick_sibling(term: TerminologyLike, code: str, *, seed: int, sample_index: int) -> str | None:
    siblings = sorted(s for s in term.siblings(code) if s != code)
    if not siblings:
        return None
    return random.Random(f"{seed}:{code}:{sample_index}").choice(siblings)

"""The one record that flows through clinassay: a (mention, code) pair with its provenance.

Generators write it, the audit reads it (from any tool: only mention, code and language are
required), and retrieval trains on the accepted ones. Unknown fields from other tools are kept.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinassay.terminology.languages import LANGUAGES, Language

__all__ = ["LANGUAGES", "Language", "Pair", "Reject", "Task", "pair_id"]

Task = Literal["positive", "hard_negative"]


def pair_id(mention: str, code: str, language: str, request_key: str | None = None) -> str:
    """Stable id: the same pair from the same request always gets the same id."""
    h = hashlib.sha256()
    for part in (request_key or "", mention, code, language):
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:16]


class Pair(BaseModel):
    """A mention-code pair; provenance fields are optional so that pairs from other tools audit too."""

    model_config = ConfigDict(extra="allow")

    mention: str
    code: str
    language: str
    id: str | None = None
    model: str | None = Field(default=None, description="configured generator name, e.g. 'gemma-270m' or 'terminology:who'")
    litellm_model: str | None = None
    task: Task = "positive"
    negative_of: str | None = None
    prompt_id: str | None = None
    prompt_hash: str | None = None
    seed: int | None = None
    temperature: float | None = None
    sample_index: int | None = None
    request_key: str | None = None
    created_at: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    """This pair's share of its request's cost (request cost / pairs it made), so sums over pairs
    give the spend; None when the model has no known price. input/output_tokens are the request's."""
    clinassay_version: str | None = None
    request_pairs: int | None = None
    """How many pairs the request that made this one wrote; resume uses it to spot a torn request."""

    def ensure_id(self) -> "Pair":
        if not self.id:
            self.id = pair_id(self.mention, self.code, self.language, self.request_key)
        return self


RejectReason = Literal["unparseable", "empty", "request_failed", "invalid_item"]


class Reject(BaseModel):
    """A request (or one item of a reply) that made no pair, kept with its raw text and why.

    Rejects live next to the pairs (`pairs.rejects.jsonl`): nothing a model returned is lost silently.
    `request_failed` rejects are retried by a resumed run; the others are final.
    """

    model_config = ConfigDict(extra="allow")

    request_key: str
    reason: RejectReason
    detail: str = ""
    raw: str = ""
    code: str
    language: str
    model: str
    litellm_model: str | None = None
    task: Task = "positive"
    sample_index: int = 0
    prompt_id: str | None = None
    prompt_hash: str | None = None
    created_at: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    clinassay_version: str | None = None

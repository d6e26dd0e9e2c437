"""What a request's answer becomes: pairs with their provenance, and rejects (kept with the raw text and why).

Never raises on what a server sent: a bad reply must not stop the run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from clinassay.generation.llm import BadReplyError, Completion, LLMClient
from clinassay.generation.parser import has_lone_surrogate, parse_mentions, printable
from clinassay.generation.records import Pair, Reject
from clinassay.generation.requests import Request

TERMINOLOGY_PROMPT_ID = "terminology/v1"


@lru_cache(maxsize=1)
def clinassay_version() -> str:
    try:
        return version("clinassay")
    except PackageNotFoundError:
        return "0.0.0+local"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def reply_to_pairs(r: Request, c: Completion, *, max_mentions: int = 50) -> tuple[list[Pair], list[Reject]]:
    """The pairs a reply makes (at most `max_mentions`), and rejects for what it did not (kept with the
    raw text and why). Never raises on what a server sent: a bad reply must not stop the run."""
    assert r.prompt is not None
    common = dict(code=r.code, language=r.language, litellm_model=c.litellm_model, task=r.task,
                  sample_index=r.sample_index, prompt_id=r.prompt.prompt_id, prompt_hash=r.prompt.prompt_hash,
                  created_at=_now(), clinassay_version=clinassay_version(), request_key=r.key)
    mentions = parse_mentions(c.text, prefill=r.prompt.prefill)
    rejects = []
    kept = []
    for m in mentions:
        if has_lone_surrogate(m):
            rejects.append(Reject(reason="invalid_item", detail="the mention holds a lone surrogate (not text)",
                                  raw=printable(m), model=c.served_by, cost_usd=0.0, **common))
        elif m.replace(".", "").casefold() == r.code.replace(".", "").casefold():
            rejects.append(Reject(reason="invalid_item", detail="the mention is the code itself", raw=m,
                                  model=c.served_by, cost_usd=0.0, **common))
        else:
            kept.append(m)
    if len(kept) > max_mentions:
        dropped = kept[max_mentions:]
        kept = kept[:max_mentions]
        rejects.append(Reject(reason="invalid_item", model=c.served_by, cost_usd=0.0,
                              detail=f"the reply held {len(kept) + len(dropped):,} mentions; only the first "
                                     f"{max_mentions} are kept (max_mentions_per_reply)",
                              raw=_capped("\n".join(dropped)), **common))
    usage = dict(input_tokens=c.input_tokens, output_tokens=c.output_tokens)
    if not kept:
        reason = "empty" if not c.text.strip() or mentions else "unparseable"
        detail = "no mention in the reply" if reason == "empty" else "no mention list could be read from the reply"
        rejects.append(Reject(reason=reason, detail=detail, raw=_capped(printable(c.text)), model=c.served_by,
                              cost_usd=c.cost_usd, **usage, **common))
        return [], rejects
    share = None if c.cost_usd is None else c.cost_usd / len(kept)
    pairs = [
        Pair(mention=m, model=c.served_by, negative_of=r.negative_of, seed=r.seed, temperature=r.temperature,
             cost_usd=share, request_pairs=len(kept), **usage, **common).ensure_id()
        for m in kept
    ]
    return pairs, rejects


RAW_CHARS = 20_000
"""A reject keeps this much of a reply's raw text (a runaway reply is not copied whole)."""


def _capped(text: str) -> str:
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + f"... ({len(text):,} characters)"


def bad_reply_reject(r: Request, client: LLMClient, exc: BadReplyError) -> Reject:
    """A reply that could not be read at all (no choices, ...): final, with what the server sent."""
    return Reject(reason=exc.reason, detail=str(exc), raw=_capped(printable(exc.raw)), code=r.code, language=r.language,
                  model=r.model, litellm_model=client.litellm_model(r.model), task=r.task,
                  sample_index=r.sample_index, prompt_id=r.prompt.prompt_id if r.prompt else None,
                  prompt_hash=r.prompt.prompt_hash if r.prompt else None, created_at=_now(),
                  request_key=r.key, input_tokens=exc.input_tokens, output_tokens=exc.output_tokens,
                  cost_usd=0.0, clinassay_version=clinassay_version())


def failed_reject(r: Request, client: LLMClient, detail: str) -> Reject:
    return Reject(reason="request_failed", detail=detail, raw="", code=r.code, language=r.language,
                  model=r.model, litellm_model=client.litellm_model(r.model), task=r.task,
                  sample_index=r.sample_index, prompt_id=r.prompt.prompt_id if r.prompt else None,
                  prompt_hash=r.prompt.prompt_hash if r.prompt else None, created_at=_now(),
                  request_key=r.key, cost_usd=0.0, clinassay_version=clinassay_version())


def terminology_pairs(r: Request) -> list[Pair]:
    return [
        Pair(mention=text, code=r.code, language=r.language, model=f"terminology:{source}", litellm_model=None,
             task=r.task, negative_of=r.negative_of, prompt_id=TERMINOLOGY_PROMPT_ID, prompt_hash=r.prompt_hash,
             seed=r.seed, temperature=None, sample_index=r.sample_index, request_key=r.key, created_at=_now(),
             input_tokens=0, output_tokens=0, cost_usd=0.0, clinassay_version=clinassay_version(),
             request_pairs=len(r.static_mentions)).ensure_id()
        for text, source in r.static_mentions
    ]

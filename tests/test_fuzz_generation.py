"""Fuzz the reply handling (Hypothesis): whatever a server sends, `parse_mentions` does not raise and
`reply_to_pairs` makes at most `max_mentions` pairs and rejects that can all be written as UTF-8 JSON,
so no reply can stop a run or make every --resume crash on the same request."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinassay.generation.llm import Completion
from clinassay.generation.parser import MAX_MENTION_CHARS, parse_mentions
from clinassay.generation.plan import Request
from clinassay.generation.prompts import Prompt
from clinassay.generation.runner import reply_to_pairs

PROMPT = Prompt(prompt_id="positive/instruct/v1", text="Target code: N39.0")
SURROGATES = ["\ud800", "\udfff", "\\ud800", "\\u12", "\\"]

pieces = st.one_of(
    st.text(max_size=30),
    st.sampled_from(['{"mentions": [', "]}", "```json\n", "\n```", '"', ", ", "[", "]", "{", "}", "1. ", "- ",
                     '{"mentions": "x"}', '{"items": [{"text": 3}]}', "null", "NaN", "\n\n", *SURROGATES]),
    st.integers(1, 30_000).map(lambda n: "[" * n),
    st.integers(4301, 6000).map(lambda n: "9" * n),
    st.lists(st.text(max_size=12), max_size=120).map(lambda items: json.dumps({"mentions": items})),
)
replies = st.lists(pieces, max_size=8).map("".join)

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(replies, st.sampled_from(["", '{"mentions": ["', "[\""]))
def test_parse_mentions_never_raises_and_returns_clean_text(text, prefill):
    mentions = parse_mentions(text, prefill=prefill)
    assert isinstance(mentions, list)
    assert all(isinstance(m, str) and m and len(m) <= MAX_MENTION_CHARS and m == m.strip() for m in mentions)
    assert len({m.casefold() for m in mentions}) == len(mentions)


@FUZZ
@given(replies, st.integers(1, 60))
def test_any_reply_becomes_writable_pairs_and_rejects(text, cap):
    r = Request(model="m", litellm_model="openai/x", kind="litellm", task="positive", code="N39.0", language="es",
                sample_index=0, seed=0, temperature=0.5, n=3, prompt=PROMPT)
    pairs, rejects = reply_to_pairs(r, Completion(text, "m", "openai/x", 10, 5, 0.01), max_mentions=cap)
    assert len(pairs) <= cap
    assert pairs or rejects  # a reply always leaves a trace
    for record in [*pairs, *rejects]:
        record.model_dump_json().encode("utf-8")  # no lone surrogate reaches the files

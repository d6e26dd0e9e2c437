"""An optional jury of LLMs asked whether each mention is a case of its code.

Off by default: it costs money and time. The judges are LiteLLM deployments configured like generation's
models (`[[audit.jury.models]]`, or plain LiteLLM model strings) and are asked through generation's
`LLMClient`: the same Router, rate pacing, retries, key handling and scrubbing, all of a chunk's
questions in flight at once. Each judge's verdict and the agreement are recorded; a judge that errors
or answers garbage abstains instead of crashing the audit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Sequence

from clinassay.generation.config import LiteLLMModel
from clinassay.generation.errors import GenerationError
from clinassay.generation.llm import LLMClient
from clinassay.generation.prompts import Prompt

PROMPT_ID = "jury-v1"
PROMPT = (
    "You check clinical coding. Answer with one word, YES or NO.\n"
    "Is the clinical mention \"{mention}\" (language: {language}) correctly coded as ICD-10-CM {code} "
    "\"{title}\"?"
)


@dataclass(frozen=True)
class Question:
    mention: str
    code: str
    title: str
    language: str


@dataclass(frozen=True)
class Verdict:
    model: str
    fits: bool | None  # None: abstained (error or unparseable reply)
    raw: str


def parse_verdict(text: str) -> bool | None:
    """Tolerant: the first YES/NO word (any case, any language's si/sí/oui/sim also count as yes)."""
    for token in text.strip().lower().replace(".", " ").replace(",", " ").split():
        if token in {"yes", "si", "sí", "oui", "sim", "sì"}:
            return True
        if token in {"no", "non", "não", "nao"}:
            return False
    return None


def ask_jury(questions: Sequence[Question], judges: Sequence[LiteLLMModel]) -> list[list[Verdict]]:
    """Every judge's verdict on every question, in the judges' order."""
    if not questions or not judges:
        return [[] for _ in questions]
    return asyncio.run(_ask(list(questions), list(judges)))


async def _ask(questions: list[Question], judges: list[LiteLLMModel]) -> list[list[Verdict]]:
    client = LLMClient(judges)
    in_flight = {name: asyncio.Semaphore(sum(m.max_concurrency for m in group)) for name, group in client.groups.items()}

    async def verdict(name: str, question: Question) -> Verdict:
        prompt = Prompt(PROMPT_ID, PROMPT.format(mention=question.mention, code=question.code, title=question.title,
                                                 language=question.language))
        async with in_flight[name]:
            try:
                reply = await client.complete(name, prompt, temperature=client.models[name].temperature, seed=None)
            except GenerationError as exc:  # rate limit, refused key, timeout, unreadable reply: abstain
                return Verdict(name, None, f"error: {type(exc).__name__}")
        return Verdict(name, parse_verdict(reply.text), reply.text[:200])

    try:
        return list(await asyncio.gather(*(asyncio.gather(*(verdict(name, q) for name in client.groups))
                                           for q in questions)))
    finally:
        await client.aclose()

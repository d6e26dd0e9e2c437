"""An optional jury of LLMs (through LiteLLM) asked whether each mention is a case of its code.

Off by default: it costs money and time. Each judge's verdict and the agreement are recorded; a judge
that errors or answers garbage abstains instead of crashing the audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROMPT = (
    "You check clinical coding. Answer with one word, YES or NO.\n"
    "Is the clinical mention \"{mention}\" (language: {language}) correctly coded as ICD-10-CM {code} "
    "\"{title}\"?"
)


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


def ask_jury(mention: str, code: str, title: str, language: str, *, models: list[str], timeout_s: float,
             completion_kwargs: dict[str, Any] | None = None) -> list[Verdict]:
    import litellm
    import openai

    verdicts = []
    prompt = PROMPT.format(mention=mention, code=code, title=title, language=language)
    for model in models:
        try:
            reply = litellm.completion(model=model, messages=[{"role": "user", "content": prompt}],
                                       timeout=timeout_s, max_tokens=5, **(completion_kwargs or {}))
            text = reply.choices[0].message.content or ""
        except openai.OpenAIError as exc:  # LiteLLM's errors (rate limit, timeout, server) subclass it
            verdicts.append(Verdict(model, None, f"error: {type(exc).__name__}"))
            continue
        verdicts.append(Verdict(model, parse_verdict(text), text[:200]))
    return verdicts

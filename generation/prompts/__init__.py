"""Prompt templates for the generation tasks, grounded in the terminology.

A prompt is a Jinja template shipped as package data (`*.j2` next to this file). Two tasks:
`positive` (mentions of the target code) and `hard_negative` (mentions of a sibling code that a
coder could confuse with the target). Each task has an instruction template for chat models and a
few-shot completion template for small base models (the embedded Gemma), whose reply continues
after `prefill`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import jinja2

from clinassay.generation.records import Task

Style = Literal["instruct", "fewshot"]

LANGUAGE_NAMES = {
    "es": "Spanish",
    "ca": "Catalan",
    "pt": "Portuguese",
    "fr": "French",
    "it": "Italian",
    "en": "English",
}

PROMPT_VERSION = "v1"

# Hand-written examples for the few-shot prompt (clinician style, per language).
FEWSHOT = {
    "es": {"N390": ["ITU", "infección urinaria", "infeccion de orina sin foco claro"],
           "J45909": ["asma bronquial", "crisis asmática leve", "asma no complicada"]},
    "ca": {"N390": ["ITU", "infecció urinària", "infecció d'orina"],
           "J45909": ["asma bronquial", "asma no complicada", "asma"]},
    "pt": {"N390": ["ITU", "infecção urinária", "infeção do trato urinário"],
           "J45909": ["asma brônquica", "asma não complicada", "crise de asma leve"]},
    "fr": {"N390": ["IU", "infection urinaire", "infection urinaire sans précision"],
           "J45909": ["asthme", "asthme non compliqué", "crise d'asthme légère"]},
    "it": {"N390": ["IVU", "infezione urinaria", "infezione delle vie urinarie"],
           "J45909": ["asma bronchiale", "asma non complicata", "asma"]},
    "en": {"N390": ["UTI", "urinary tract infection", "urine infection, source unclear"],
           "J45909": ["asthma", "uncomplicated asthma", "mild asthma, no exacerbation"]},
}


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt: its text, the id of the template that made it and a hash of both."""

    prompt_id: str
    text: str
    prefill: str = ""
    """Text the reply continues (few-shot prompts end inside an open JSON list)."""

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(f"{self.prompt_id}\x1f{self.text}".encode("utf-8")).hexdigest()[:16]

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.text}]


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_source),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text prompts, not HTML
        keep_trailing_newline=False,
    )
    # few-shot examples show accents as written: a model shown "\u00e7" answers with escapes
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": False}
    return env


def _load_source(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def template_name(task: Task, style: Style) -> str:
    return f"{task}{'_fewshot' if style == 'fewshot' else ''}.j2"


def render_prompt(task: Task, context: dict[str, Any], *, style: Style = "instruct") -> Prompt:
    """Render the template of `task` with a context built by `generation.plan.prompt_context`."""
    name = template_name(task, style)
    language = context["language"]
    text = _environment().get_template(name).render(
        **context,
        language_name=LANGUAGE_NAMES.get(language, language),
        fewshot=FEWSHOT.get(language, FEWSHOT["en"]),
    ).strip()
    # A few-shot template ends inside an open list (`["`): the parser sees prefill + reply whole.
    prefill = '["' if style == "fewshot" else ""
    return Prompt(prompt_id=f"{task}/{style}/{PROMPT_VERSION}", text=text, prefill=prefill)

"""The sampling plan: codes x languages x models x tasks x samples, each a request with a stable key.

The key (model, prompt hash, code, language, sample index, seed, task) is what resume matches on:
the same config over the same terminology always yields the same keys, and any change to a prompt
changes its hash and so its key.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.prompts import Prompt, Style, render_prompt
from clinassay.generation.records import Task
from clinassay.generation.short_forms import short_form
from clinassay.terminology.errors import ClinassayInputError

MAX_SIBLINGS_IN_PROMPT = 8
MAX_EXCLUDES_IN_PROMPT = 8


@dataclass(frozen=True)
class Request:
    """One call to one generator. For a hard negative, `code` is the sibling the mentions belong to
    and `negative_of` the code they must not be confused with."""

    model: str
    litellm_model: str | None
    kind: str
    task: Task
    code: str
    language: str
    sample_index: int
    seed: int
    temperature: float | None
    n: int
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


# ----------------------------------------------------------------------------------------- codes
def select_codes(term: Any, config: GenerationConfig) -> list[str]:
    """The codes to generate for: from `codes_file`, or a sample spread evenly across chapters."""
    if config.codes_file is not None:
        return read_codes_file(term, config.codes_file)
    return stratified_sample(term, config.sample, seed=config.seed, billable_only=config.billable_only,
                             chapters=config.chapters)


def read_codes_file(term: Any, path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ClinassayInputError(f"codes_file not found: {path}")
    codes, problems = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            codes.append(term.get(text).code)
        except ClinassayInputError as exc:
            problems.append(f"{path}:{lineno}: {exc}")
    if problems:
        raise ClinassayInputError("bad codes in codes_file:\n  " + "\n  ".join(problems[:20]))
    if not codes:
        raise ClinassayInputError(f"codes_file {path} lists no codes")
    return list(dict.fromkeys(codes))


def stratified_sample(term: Any, n: int, *, seed: int, billable_only: bool = True,
                      chapters: list[str] | None = None) -> list[str]:
    """`n` codes taken round-robin across chapters (shuffled within each with `seed`), so that
    coverage is balanced by design; a chapter that runs out leaves its turns to the others.
    `chapters` restricts the sample to those chapters (e.g. to match a restricted code corpus)."""
    by_chapter: dict[str, list[str]] = defaultdict(list)
    if billable_only:
        for code in term.billable_codes():
            by_chapter[term.get(code).chapter].append(code)
    else:
        for chapter in term.chapters():
            stack = list(chapter.children)
            while stack:
                c = term.get(stack.pop())
                if c.kind in ("category", "code"):
                    by_chapter[chapter.code].append(c.code)
                stack.extend(c.children)
    if chapters:
        known = {c.code for c in term.chapters()}
        unknown = [c for c in chapters if c not in known]
        if unknown:
            raise ClinassayInputError(f"generation.chapters: unknown chapters {unknown}; chapters are 1..{len(known)}")
        by_chapter = {c: codes for c, codes in by_chapter.items() if c in set(chapters)}
    rng = random.Random(seed)
    queues = []
    for chapter in sorted(by_chapter, key=_chapter_order):
        codes = sorted(set(by_chapter[chapter]))
        rng.shuffle(codes)
        queues.append(codes)
    picked: list[str] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    return picked


def _chapter_order(chapter: str) -> tuple[int, str]:
    return (int(chapter), chapter) if str(chapter).isdigit() else (10_000, str(chapter))


# --------------------------------------------------------------------------------------- prompts
def prompt_context(term: Any, code: str, language: str, *, n: int = 5, other: str | None = None) -> dict[str, Any]:
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


def _native_label(term: Any, code: str, language: str) -> str | None:
    if language == "en":
        return None  # the English title is shown already
    label = term.label(code, language)
    if label is None or label.precision != "exact":
        return None
    return label.text


# ------------------------------------------------------------------------------------------ plan
@dataclass
class Plan:
    requests: list[Request]
    codes: list[str]
    config: GenerationConfig

    def by_model(self) -> dict[str, int]:
        return dict(Counter(r.model for r in self.requests))

    def expected_pairs(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for r in self.requests:
            out[r.model] += len(r.static_mentions) if r.kind == "terminology" else r.n
        return dict(out)


def build_plan(term: Any, config: GenerationConfig, *, codes: list[str] | None = None) -> Plan:
    """All requests of a run, in a stable order (model, code, language, task, sample)."""
    codes = codes if codes is not None else select_codes(term, config)
    requests: list[Request] = []
    for model in config.generators():  # a model group is asked once; its Router picks the deployment
        for code in codes[: model.max_codes]:
            for language in config.languages:
                for task in config.tasks:
                    requests.extend(_requests_for(term, config, model, code, language, task))
    return Plan(requests=requests, codes=codes, config=config)


def _requests_for(term: Any, config: GenerationConfig, model: ModelConfig, code: str, language: str,
                  task: Task) -> Iterable[Request]:
    if model.kind == "terminology":
        yield from _terminology_requests(term, config, model, code, language, task)
        return
    style: Style = "fewshot" if model.kind == "embedded" else "instruct"
    for sample_index in range(config.samples_per_code):
        other = None
        if task == "hard_negative":
            other = pick_sibling(term, code, seed=config.seed, sample_index=sample_index)
            if other is None:
                continue  # a code without siblings has no hard negatives
        prompt = render_prompt(task, prompt_context(term, code, language, n=config.mentions_per_code, other=other), style=style)
        yield Request(
            model=model.name, litellm_model=model.model, kind=model.kind, task=task,
            code=other or code, negative_of=code if other else None, language=language,
            sample_index=sample_index, seed=config.seed, temperature=model.temperature,
            n=config.mentions_per_code, prompt=prompt,
        )


def pick_sibling(term: Any, code: str, *, seed: int, sample_index: int) -> str | None:
    siblings = sorted(s for s in term.siblings(code) if s != code)
    if not siblings:
        return None
    return random.Random(f"{seed}:{code}:{sample_index}").choice(siblings)


def _terminology_requests(term: Any, config: GenerationConfig, model: ModelConfig, code: str,
                          language: str, task: Task) -> Iterable[Request]:
    """Real labels as pairs: ICD-10-CM title and inclusion terms in English, exact native labels else."""
    other = None
    if task == "hard_negative":
        other = pick_sibling(term, code, seed=config.seed, sample_index=0)
        if other is None:
            return
    target = other or code
    items = terminology_mentions(term, target, language, sources=model.sources, short_forms=model.short_forms)
    if items:
        yield Request(
            model=model.name, litellm_model=None, kind="terminology", task=task, code=target,
            negative_of=code if other else None, language=language, sample_index=0, seed=config.seed,
            temperature=None, n=len(items), static_mentions=tuple(items),
        )


def terminology_mentions(term: Any, code: str, language: str, *, sources: list[str],
                         short_forms: bool = False) -> list[tuple[str, str]]:
    """(text, source) pairs; with `short_forms`, each label's short form follows it as `SOURCE:short`."""
    c = term.get(code)
    items: list[tuple[str, str]] = []
    if language == "en":
        if "icd10cm" in sources:
            items = [(c.title, "icd10cm")] + [(t, "icd10cm") for t in c.inclusion_terms]
    else:
        label = term.label(code, language)
        if label is not None and label.precision == "exact":
            family = label.source.split(":", 1)[0]
            if family in sources:
                items = [(label.text, label.source)]
    if short_forms:
        items = [x for text, source in items
                 for x in ((text, source), (short_form(text, language), f"{source}:short")) if x[0]]
    seen: set[str] = set()
    unique = []
    for text, source in items:
        if text.casefold() not in seen:
            seen.add(text.casefold())
            unique.append((text, source))
    return unique

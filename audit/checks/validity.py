"""validity: is this a pair at all? A known (and by default billable) code, a configured language, and
a mention that is text of a sensible length, not only symbols and not just the code itself."""

from __future__ import annotations

import re

from audit.checks.base import Check
from audit.findings import Finding
from audit.items import Chunk, Item
from audit.text import normalize_text
from terminology.errors import ClinassayInputError

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


class ValidityCheck(Check):
    name = "validity"
    summary_meaning = "share of pairs that are not valid pairs (unknown code, bad language, empty or absurd mention)"

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        return [self._check(item) for item in chunk.items]

    def _fail(self, reason: str, detail: str, *, severity=None) -> Finding:
        return Finding(self.name, reason, 1.0, detail, severity or self.config.validity.severity)

    def _check(self, item: Item) -> list[Finding]:
        cfg = self.config.validity
        out: list[Finding] = []
        if item.language not in self.config.languages:
            out.append(self._fail("language_not_configured",
                                  f"language '{item.language}' is not one of the configured languages {self.config.languages}"))
        mention = item.mention.strip()
        if not mention:
            out.append(self._fail("empty_mention", "the mention is empty"))
        elif len(mention) < cfg.min_chars:
            out.append(self._fail("too_short", f"the mention has {len(mention)} characters, fewer than {cfg.min_chars}"))
        elif len(mention) > cfg.max_chars:
            out.append(self._fail("too_long", f"the mention has {len(mention)} characters, more than {cfg.max_chars}"))
        elif not _LETTER.search(mention):
            out.append(self._fail("no_letters", "the mention has no letters, only digits or symbols"))
        try:
            entry = self.resources.terminology.get(item.raw_code)
        except ClinassayInputError as exc:
            suggestions = getattr(exc, "suggestions", None)
            reason = "unknown_code" if suggestions is not None else "malformed_code"
            hint = f" (did you mean {', '.join(suggestions[:3])}?)" if suggestions else ""
            out.append(self._fail(reason, f"code '{item.raw_code}' is not an ICD-10-CM code: {exc}{hint}"))
            return out
        item.code, item.entry = entry.code, entry
        if mention and normalize_text(mention).replace(" ", "") in {
            normalize_text(entry.code).replace(" ", ""), normalize_text(item.raw_code).replace(" ", "")
        }:
            out.append(self._fail("mention_is_code", f"the mention is just the code {entry.code}"))
        if cfg.require_billable and not entry.billable:
            out.append(self._fail("not_billable",
                                  f"{entry.code} ({entry.title}) is a {entry.kind} header, not a billable code",
                                  severity=cfg.billable_severity))
        return out

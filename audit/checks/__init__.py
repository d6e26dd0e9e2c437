"""The per-pair checks, in the order they run: later checks see earlier findings (duplicate only
indexes pairs still accepted, so the representative it points to is really kept)."""

from clinassay.audit.checks.base import AuditResources, Check, CheckSummary
from clinassay.audit.checks.consistency import ConsistencyCheck
from clinassay.audit.checks.duplicate import DuplicateCheck
from clinassay.audit.checks.language import LanguageCheck
from clinassay.audit.checks.leakage import LeakageCheck
from clinassay.audit.checks.phi import PhiCheck
from clinassay.audit.checks.spelling import SpellingCheck
from clinassay.audit.checks.validity import ValidityCheck

CHECKS: tuple[type[Check], ...] = (ValidityCheck, LanguageCheck, SpellingCheck, PhiCheck, ConsistencyCheck, LeakageCheck, DuplicateCheck)
CHECK_NAMES: tuple[str, ...] = tuple(c.name for c in CHECKS)

__all__ = ["AuditResources", "CHECKS", "CHECK_NAMES", "Check", "CheckSummary", "ConsistencyCheck", "DuplicateCheck",
           "LanguageCheck", "LeakageCheck", "PhiCheck", "SpellingCheck", "ValidityCheck"]

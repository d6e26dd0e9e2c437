"""audit: decide for every (mention, code) pair whether it may train a retriever, and for the dataset
whether it passes the gate. Light to import: models, faiss and Evidently load only when used."""

from audit.auditor import AuditOutcome, Auditor, audit_pairs, run_audit
from audit.checks import CHECK_NAMES, CHECKS
from audit.config import AuditConfig
from audit.embedding import Encoder
from audit.findings import Decision, Finding
from audit.reader import Malformed

__all__ = ["AuditConfig", "AuditOutcome", "Auditor", "CHECKS", "CHECK_NAMES", "Decision", "Encoder", "Finding",
           "Malformed", "audit_pairs", "run_audit"]

"""audit: decide for every (mention, code) pair whether it may train a retriever, and for the dataset
whether it passes the gate. Light to import: models, faiss and Evidently load only when used."""

from clinassay.audit.auditor import AuditOutcome, Auditor, audit_pairs, run_audit
from clinassay.audit.checks import CHECK_NAMES, CHECKS
from clinassay.audit.config import AuditConfig
from clinassay.audit.embedding import Encoder
from clinassay.audit.findings import Decision, Finding
from clinassay.audit.reader import Malformed

__all__ = ["AuditConfig", "AuditOutcome", "Auditor", "CHECKS", "CHECK_NAMES", "Decision", "Encoder", "Finding",
           "Malformed", "audit_pairs", "run_audit"]

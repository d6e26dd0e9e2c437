"""One TOML file, parsed into typed sections (one per package); CLI flags override it.

Unknown keys are errors that name the key and the file, so a typo never silently does nothing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from clinassay.audit.config import AuditConfig
from clinassay.generation.config import GenerationConfig
from clinassay.reports.config import ReportConfig
from clinassay.retrieval.config import RetrievalConfig
from clinassay.terminology.config import TerminologyConfig
from clinassay.terminology.errors import ClinassayInputError




class RunConfig(BaseModel):
    """The `[run]` section: what `clinassay run` chains, and what it measures the result against."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Path("runs/quickstart")
    eval_set: Path | None = None
    """Evaluation set (TSV/JSONL: mention, code, language); also the audit's leakage reference."""
    heldout_per_language: int = Field(0, ge=0)
    """Without an eval_set: evaluate on this many held-out terminology labels per language, taken
    from corpus codes that the generation plan does not touch."""
    reference: Path | None = None
    """Real mentions per language for the audit's drift and synthetic-vs-real checks."""
    baseline: str = "me5-small"
    """Zero-shot model the trained retriever must not regress against (or a metrics.json path)."""
    rerank: bool = True


class ClinassayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run: RunConfig = RunConfig()

    terminology: TerminologyConfig = TerminologyConfig()
    generation: GenerationConfig = GenerationConfig()
    audit: AuditConfig = AuditConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    reports: ReportConfig = ReportConfig()


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{where}'"
    return f"'{where}': {error['msg']}"


def describe_validation(exc: ValidationError) -> str:
    """Every problem of a pydantic validation, on one line (the CLI's message for bad config values)."""
    return "; ".join(_describe(e) for e in exc.errors())


def load_config(path: Path | str | None) -> ClinassayConfig:
    """Read and validate a config file; None gives the defaults."""
    if path is None:
        return ClinassayConfig()
    path = Path(path)
    if path.is_dir():
        raise ClinassayInputError(f"config file {path} is a directory, not a file")
    if not path.is_file():
        raise ClinassayInputError(f"config file not found: {path}")
    data = path.read_bytes()  # OSError (permission denied, ...) is bad input at the CLI edge
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ClinassayInputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                                  "save the config as UTF-8") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClinassayInputError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ClinassayInputError(f"{path}: not valid TOML: nested too deeply") from exc
    try:
        config = ClinassayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ClinassayInputError(f"{path}: {describe_validation(exc)}") from exc
    config = _resolve_paths(config, path.parent)
    # [terminology] cache_dir holds for every command and library call of this process, not only
    # for the terminology commands: imported label tables are seen everywhere or nowhere
    from clinassay.terminology.terminology import configure

    configure(config.terminology)
    return config


def _resolve_paths(config: ClinassayConfig, base: Path) -> ClinassayConfig:
    """Relative paths in a config file are relative to that file, not to the working directory."""
    for section in (config.run, config.terminology, config.generation, config.audit, config.retrieval, config.reports):
        for name, value in section:
            if isinstance(value, Path) and not value.is_absolute():
                setattr(section, name, base / value)
    return config


def with_overrides(section: BaseModel, **overrides: Any) -> BaseModel:
    """Apply CLI flags (None means "not given") over a config section, re-validating the result."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return section
    try:
        return type(section).model_validate({**section.model_dump(), **given})
    except ValidationError as exc:
        raise ClinassayInputError(describe_validation(exc)) from exc

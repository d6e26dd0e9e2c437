"""Turn an audit's summary (`clinassay.audit.summary.AuditSummary`) and its streamed rejects into report
sections. The sections show the audit's decisions (verdict, gate results, outliers) as given; only the
free-form figures (check info, drift, fingerprint) are read tolerantly. The flagged examples live in
`reports.examples`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from clinassay.audit.gate import GateResult
from clinassay.audit.summary import AuditSummary
from clinassay.reports.config import ReportConfig
from clinassay.reports.context import (
    FitRow,
    Bias,
    Coverage,
    CoverageCell,
    CoverageRow,
    DriftFeature,
    DriftLanguage,
    Fingerprint,
    GateRow,
    Generator,
    MalformedLine,
    Matrix,
    MatrixCell,
    Provenance,
)
from clinassay.reports.sources import AuditOutput
from clinassay.reports.values import (
    as_dict,
    as_float,
    as_int,
    as_list,
    as_str,
    flatten,
    ordered_checks,
    ordered_languages,
    ratio,
    short_value,
)

COUNT_KEYS = ("input_lines", "accepted", "rejected", "malformed", "warned")


# --- verdict -----------------------------------------------------------------------------------------

def counts_of(summary: AuditSummary) -> dict[str, int | None]:
    return summary.counts.model_dump()


_SHARES = ("rate", "share", "coverage")
_SYMBOLS = {"<=": "≤", ">=": "≥"}


def _is_share(result: GateResult) -> bool:
    return any(word in result.name for word in _SHARES)


def _gate_sentence(result: GateResult) -> str:
    """e.g. "reject rate (language:pt): 45.3%, required ≤ 40.0%: over by 5.3 points"."""
    name = result.name.replace("_", " ")
    where = f" ({result.scope})" if result.scope != "overall" else ""
    share = _is_share(result)

    def show(x: float) -> str:
        return f"{x:.1%}" if share else short_value(x)

    text = f"{name}{where}: {show(result.value)}, required {_SYMBOLS[result.comparison]} {show(result.threshold)}"
    if not result.passed:
        gap = f"{abs(result.margin) * 100:.1f} points" if share else short_value(abs(result.margin))
        text += f": {'over' if result.comparison == '<=' else 'short'} by {gap}"
    return text


def _gate_figures(result: GateResult) -> tuple[str, str, str]:
    """Value, requirement and margin as people read them: rates in percent, margins in points."""
    comparison = _SYMBOLS[result.comparison]
    if _is_share(result):
        return f"{result.value:.1%}", f"{comparison} {result.threshold:.1%}", f"{result.margin * 100:+.1f} pts"
    margin = result.margin
    shown_margin = f"{margin:+,.0f}" if float(margin).is_integer() else f"{margin:+.4g}"
    return short_value(result.value), f"{comparison} {short_value(result.threshold)}", shown_margin


def gate_rows(summary: AuditSummary) -> list[GateRow]:
    return [
        GateRow(name=r.name, scope=r.scope, value=r.value, threshold=r.threshold, comparison=r.comparison,
                passed=r.passed, margin=r.margin, sentence=_gate_sentence(r), shown=_gate_figures(r))
        for r in summary.gate.results
    ]


# --- provenance --------------------------------------------------------------------------------------

def provenance_of(audit: AuditOutput) -> Provenance:
    summary, manifest = audit.summary, audit.manifest
    prov = summary.provenance
    generators = [
        Generator(
            name=g.name,
            litellm_model=", ".join(g.litellm_model) if isinstance(g.litellm_model, list) else g.litellm_model,
            prompt_ids=list(g.prompt_ids),
            prompt_hashes=list(g.prompt_hashes),
            pairs=g.pairs,
            input_tokens=g.input_tokens,
            output_tokens=g.output_tokens,
            cost_usd=g.cost_usd,
        )
        for g in prov.generators
    ]

    def total(attr: str) -> Any:
        return sum(getattr(g, attr) for g in generators) if generators else None

    config = prov.config.model_dump(mode="json")
    accepted = summary.outputs.accepted.sha256 if summary.outputs else as_dict(manifest.get("accepted")).get("sha256")
    return Provenance(
        input_path=prov.input.path,
        input_sha256=prov.input.sha256,
        input_lines=prov.input.lines,
        accepted_sha256=as_str(accepted),
        generators=generators,
        versions=[(k, short_value(v)) for k, v in sorted(prov.versions.items())],
        config_json=json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False, default=str),
        total_input_tokens=total("input_tokens"),
        total_output_tokens=total("output_tokens"),
        total_cost_usd=total("cost_usd"),
        sources=[
            (label, short_value(value, limit=300))
            for value, label in ((prov.config_file, "config file"), (prov.eval_set, "evaluation set"),
                                 (prov.reference, "reference mentions"), (prov.encoder, "encoder"))
            if value
        ],
    )


# --- language x generator matrix ---------------------------------------------------------------------

def matrix_of(summary: AuditSummary, *, config: ReportConfig) -> Matrix | None:
    """The reject matrix; a cell is an outlier exactly when the audit's bias check said so."""
    rows = summary.matrix
    if not rows:
        return None
    counts = summary.counts
    overall = ratio(counts.rejected, counts.accepted + counts.rejected)
    checks = ordered_checks(k for r in rows for k in r.reasons)
    outliers = {(o.language, o.generator): o.detail for o in summary.bias.outliers}
    cells = [
        MatrixCell(
            language=r.language,
            generator=r.generator,
            pairs=r.pairs,
            accepted=r.accepted,
            rejected=r.rejected,
            warned=r.warned,
            leaks=r.leaks,
            reject_rate=r.reject_rate,
            reason_rates={c: ratio(r.reasons.get(c, 0), r.pairs) for c in checks},
            language_mismatch=r.language_mismatch,
            duplicates=r.duplicates,
            cost_usd=r.cost_usd,
            cost_per_accepted=r.cost_per_accepted,
            outlier=(r.language, r.generator) in outliers,
            shade=min(1.0, (r.reject_rate or 0.0) / config.rate_scale_max),
        )
        for r in rows
    ]
    languages = ordered_languages(c.language for c in cells)
    generators = sorted({c.generator for c in cells})
    by_key = {(c.generator, c.language): c for c in cells}
    grid = [[by_key.get((g, lang)) for lang in languages] for g in generators]
    return Matrix(
        languages=languages,
        generators=generators,
        checks=checks,
        grid=grid,
        cells=sorted(cells, key=lambda c: (c.generator, languages.index(c.language))),
        overall_reject_rate=overall,
        outliers=[o.detail for o in summary.bias.outliers],
        scale_max=config.rate_scale_max,
    )


# --- coverage, bias, drift, malformed ----------------------------------------------------------------

def coverage_of(summary: AuditSummary) -> Coverage | None:
    chapters = summary.coverage.chapters
    if not chapters:
        return None
    languages = ordered_languages(lang for c in chapters for lang in (*c.planned, *c.accepted))
    rows = []
    covered = {lang: 0 for lang in languages}
    for c in chapters:
        cells = []
        for lang in languages:
            p = c.planned.get(lang)
            a = c.accepted.get(lang, 0 if p else None)  # the audit leaves out languages where nothing was accepted
            if a:
                covered[lang] += 1
            cells.append(CoverageCell(planned=p, accepted=a, ratio=min(1.0, a / p) if p and a is not None else None))
        rows.append(CoverageRow(chapter=c.chapter, title=c.title, cells=cells))
    return Coverage(languages=languages, rows=rows, chapters_covered=covered)


def _fingerprint(language: str, entry: dict[str, Any]) -> Fingerprint:
    generators, synthetic = as_dict(entry.get("generators")), as_dict(entry.get("synthetic_vs_real"))
    f1, chance = as_float(generators.get("macro_f1")), as_float(generators.get("chance_macro_f1"))
    auc = as_float(synthetic.get("roc_auc"))

    def clip(x: float) -> float:
        return max(0.0, min(1.0, x))

    giveaways = []
    for label, part in (("generators", generators), ("synthetic vs real", synthetic)):
        for cls, features in as_dict(part.get("top_features")).items():
            giveaways.append((f"{label}: {cls}", ", ".join(f"“{f}”" for f in as_list(features)[:12])))
    return Fingerprint(
        language=language,
        generators_f1=f1,
        chance_f1=chance,
        generators_auc=as_float(generators.get("roc_auc_ovr", generators.get("roc_auc"))),
        generators_note=as_str(generators.get("skipped")),
        synthetic_auc=auc,
        synthetic_note=as_str(synthetic.get("skipped")),
        generators_strength=clip((f1 - chance) / (1 - chance)) if f1 is not None and chance is not None and chance < 1 else 0.0,
        synthetic_strength=clip((auc - 0.5) / 0.5) if auc is not None else 0.0,
        giveaways=giveaways,
    )


def bias_of(summary: AuditSummary) -> Bias | None:
    bias = summary.bias
    fingerprint = bias.fingerprint or {}
    gaps = []
    for lang, share in bias.coverage.items():
        text = f"{share.chapters_accepted} of {share.chapters_planned} planned chapters have accepted pairs"
        gaps.append((lang, text + (f"; none accepted in chapter {', '.join(share.missing)}" if share.missing else "")))
    fit_rows, fit_note = fit_of(summary)
    return Bias(
        outliers=[o.detail for o in bias.outliers],
        fingerprints=[_fingerprint(lang, fingerprint[lang]) for lang in ordered_languages(fingerprint)],
        coverage_gaps=gaps,
        other=flatten({"coverage_per_generator": bias.model_dump(mode="json")["coverage_per_generator"]}, depth=3, limit=60),
        fit=fit_rows,
        fit_note=fit_note,
    )


def fit_of(summary: AuditSummary) -> tuple[list[FitRow], str]:
    """The fit check's misfit-probability histogram per generator and language, as the audit counted it."""
    consistency = summary.checks.get("consistency")
    fit = as_dict(consistency.info.get("fit")) if consistency else {}
    rows = []
    for generator, languages in sorted(as_dict(fit.get("histogram")).items()):
        for language in ordered_languages(as_dict(languages)):
            counts = [as_int(c) or 0 for c in as_list(as_dict(languages)[language])]
            total = sum(counts)
            if total:
                half = len(counts) // 2
                rows.append(FitRow(str(generator), str(language), counts, total, sum(counts[half:]) / total))
    note = ""
    if fit:
        variant = as_dict(fit.get("variant"))
        note = (f"operating point {fit.get('operating_point')}; models: {variant.get('dense')} (with an encoder), "
                f"{variant.get('lexical')} (without); {as_int(fit.get('official_terms')) or 0} official terms of their code")
        if fit.get("query_adapter"):
            note += f"; mention vectors mapped by query adapter {fit.get('query_adapter')}"
        if fit.get("adapter_mismatch") is True:
            note += ("; the encoder's fitted models were fitted with another query adapter, so the lexical "
                     "models decided")
        doubtful = as_dict(fit.get("doubtful_fit"))
        if as_int(doubtful.get("warned")):
            note += (f"; {as_int(doubtful.get('warned'))} accepted with a doubtful_fit warning (the "
                     f"{doubtful.get('warn_from')} operating point would reject them)")
    return rows, note


_SAFE_FILE = re.compile(r"^[\w.-]+\.html?$")


def drift_of(audit: AuditOutput, *, report_dir: Path | None, config: ReportConfig) -> list[DriftLanguage]:
    drift = audit.summary.drift or {}
    pages = audit.summary.drift_reports
    sections = []
    for lang in ordered_languages([*drift, *pages]):
        figures = as_dict(drift.get(lang))
        flag = figures.get("drifted", figures.get("drift_detected"))
        if not isinstance(flag, bool) and isinstance(figures.get("drifted_features"), list):
            flag = bool(figures["drifted_features"])
        link = embed = note = None
        name = pages.get(lang)
        page = audit.path / name if isinstance(name, str) and _SAFE_FILE.match(name) else None
        if name and page is None:
            note = "drift page name refused (not a plain .html file name)"
        elif page is not None and not page.is_file():
            note = f"drift page {name} is missing from the audit folder"
        elif page is not None and config.drift_html != "omit":
            size = page.stat().st_size
            if config.drift_html == "embed" and size <= config.drift_embed_max_bytes:
                embed = page.read_text(encoding="utf-8", errors="replace")
            else:
                base = report_dir.resolve() if report_dir else audit.path.resolve()
                link = quote(_relative(page.resolve(), base))
                if config.drift_html == "embed":
                    note = f"Evidently page of {size / 1e6:.1f} MB linked, not embedded (limit {config.drift_embed_max_bytes / 1e6:.1f} MB)"
        means = as_dict(figures.get("means"))
        features = [
            DriftFeature(
                name=str(name),
                score=as_float(as_dict(f).get("score")),
                method=as_str(as_dict(f).get("method")),
                threshold=as_float(as_dict(f).get("threshold")),
                drifted=as_dict(f).get("drifted") if isinstance(as_dict(f).get("drifted"), bool) else None,
                synthetic_mean=as_float(as_dict(means.get(name)).get("synthetic")),
                reference_mean=as_float(as_dict(means.get(name)).get("reference")),
            )
            for name, f in as_dict(figures.get("features")).items()
        ]
        shown = ("drifted", "drift_detected", "features", "means", "drifted_features", "drift_share", "skipped")
        sections.append(
            DriftLanguage(
                language=lang,
                drifted=flag if isinstance(flag, bool) else None,
                drift_share=as_float(figures.get("drift_share")),
                features=features,
                skipped=as_str(figures.get("skipped")),
                figures=flatten({k: v for k, v in figures.items() if k not in shown}),
                link=link,
                embed_html=embed,
                note=note,
            )
        )
    return sections


def _relative(target: Path, base: Path) -> str:
    return Path(os.path.relpath(target, base)).as_posix()


def malformed_of(summary: AuditSummary, *, config: ReportConfig) -> tuple[list[MalformedLine], int]:
    shown = [MalformedLine(line=r.line, error=short_value(r.error, limit=300)) for r in summary.malformed[: config.malformed_shown]]
    return shown, max(summary.counts.malformed, len(summary.malformed))

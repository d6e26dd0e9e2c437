"""Turn an audit's summary.json (and its streamed rejects) into report sections.

The audit may add or rename optional figures; every reader here takes what is present and leaves the
rest as None, so a report renders from any audit output that has its counts. The flagged examples
live in `reports.examples`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

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

def counts_of(summary: dict[str, Any]) -> dict[str, int | None]:
    counts = as_dict(summary.get("counts"))
    return {key: as_int(counts.get(key)) for key in COUNT_KEYS}


_SHARES = ("rate", "share", "coverage")
_SYMBOLS = {"<=": "≤", ">=": "≥"}


def _gate_sentence(row: dict[str, Any]) -> str:
    """e.g. "reject rate (language:pt): 45.3%, allowed ≤ 40.0%: over by 5.3 points"."""
    name = str(row.get("name", "threshold")).replace("_", " ")
    scope = row.get("scope")
    where = f" ({scope})" if scope and scope != "overall" else ""
    value, threshold = as_float(row.get("value")), as_float(row.get("threshold"))
    comparison = str(row.get("comparison") or "")
    share = any(word in name for word in _SHARES)

    def show(x: float | None) -> str:
        return f"{x:.1%}" if share and x is not None else short_value(x)

    text = f"{name}{where}: {show(value)}"
    if threshold is not None:
        text += f", required {_SYMBOLS.get(comparison, comparison or 'vs')} {show(threshold)}"
    if row.get("passed") is False:
        margin = as_float(row.get("margin"))
        if margin is None and value is not None and threshold is not None:
            margin = value - threshold
        if margin is not None:
            gap = f"{abs(margin) * 100:.1f} points" if share else short_value(abs(margin))
            text += f": {'over' if comparison == '<=' else 'short' if comparison == '>=' else 'off'} by {gap}"
    return text


def _gate_figures(row: dict[str, Any]) -> tuple[str, str, str]:
    """Value, requirement and margin as people read them: rates in percent, margins in points."""
    share = any(word in str(row.get("name", "")) for word in _SHARES)
    value, threshold, margin = (as_float(row.get(k)) for k in ("value", "threshold", "margin"))
    comparison = _SYMBOLS.get(str(row.get("comparison") or ""), str(row.get("comparison") or ""))
    if share:
        return (
            "n/a" if value is None else f"{value:.1%}",
            f"{comparison} {'n/a' if threshold is None else f'{threshold:.1%}'}".strip(),
            "n/a" if margin is None else f"{margin * 100:+.1f} pts",
        )
    if margin is None:
        shown_margin = "n/a"
    else:
        shown_margin = f"{margin:+,.0f}" if margin.is_integer() else f"{margin:+.4g}"
    return short_value(value), f"{comparison} {short_value(threshold)}".strip(), shown_margin


def gate_rows(summary: dict[str, Any]) -> list[GateRow]:
    rows = []
    for row in as_list(as_dict(summary.get("gate")).get("results")):
        if not isinstance(row, dict):
            continue
        passed = row.get("passed")
        rows.append(
            GateRow(
                name=str(row.get("name", "threshold")),
                scope=str(row.get("scope") or "overall"),
                value=as_float(row.get("value")),
                threshold=as_float(row.get("threshold")),
                comparison=str(row.get("comparison") or ""),
                passed=passed if isinstance(passed, bool) else None,
                margin=as_float(row.get("margin")),
                sentence=_gate_sentence(row),
                shown=_gate_figures(row),
            )
        )
    return rows


# --- provenance --------------------------------------------------------------------------------------

def provenance_of(audit: AuditOutput) -> Provenance:
    summary, manifest = audit.summary, audit.manifest
    prov = as_dict(summary.get("provenance"))
    source = as_dict(prov.get("input")) or as_dict(manifest.get("input"))
    generators = []
    for g in as_list(prov.get("generators")):
        g = as_dict(g)
        generators.append(
            Generator(
                name=str(g.get("name") or "n/a"),
                litellm_model=", ".join(map(str, g["litellm_model"])) if isinstance(g.get("litellm_model"), list)
                else as_str(g.get("litellm_model")),
                prompt_ids=[str(p) for p in as_list(g.get("prompt_ids"))],
                prompt_hashes=[str(p) for p in as_list(g.get("prompt_hashes"))],
                pairs=as_int(g.get("pairs")),
                input_tokens=as_int(g.get("input_tokens")),
                output_tokens=as_int(g.get("output_tokens")),
                cost_usd=as_float(g.get("cost_usd")),
            )
        )

    def total(attr: str) -> Any:
        values = [getattr(g, attr) for g in generators if getattr(g, attr) is not None]
        return sum(values) if values else None

    versions = as_dict(prov.get("versions")) or as_dict(manifest.get("versions"))
    config = prov.get("config", manifest.get("config"))
    accepted = as_dict(manifest.get("accepted"))
    return Provenance(
        input_path=as_str(source.get("path")),
        input_sha256=as_str(source.get("sha256")),
        input_lines=as_int(source.get("lines")),
        accepted_sha256=as_str(accepted.get("sha256") or manifest.get("accepted_sha256")),
        generators=generators,
        versions=[(str(k), short_value(v)) for k, v in sorted(versions.items())],
        config_json=json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False, default=str) if config else None,
        total_input_tokens=total("input_tokens"),
        total_output_tokens=total("output_tokens"),
        total_cost_usd=total("cost_usd"),
        sources=[
            (label, short_value(prov.get(key), limit=300))
            for key, label in (("config_file", "config file"), ("eval_set", "evaluation set"),
                               ("reference", "reference mentions"), ("encoder", "encoder"))
            if prov.get(key)
        ],
    )


# --- language x generator matrix ---------------------------------------------------------------------

def matrix_of(summary: dict[str, Any], *, config: ReportConfig) -> Matrix | None:
    rows = [r for r in as_list(summary.get("matrix")) if isinstance(r, dict)]
    if not rows:
        return None
    counts = counts_of(summary)
    judged = (counts["accepted"] or 0) + (counts["rejected"] or 0)
    overall = ratio(counts["rejected"], judged)
    checks = ordered_checks(k for r in rows for k in as_dict(r.get("reasons")))
    audit_outliers = as_dict(summary.get("bias")).get("outliers")
    flagged_by_audit = {
        (str(o.get("language")), str(o.get("generator"))) for o in as_list(audit_outliers) if isinstance(o, dict)
    }
    medians: dict[str, float] = {}
    for language in {str(r.get("language") or "n/a") for r in rows}:
        rates = sorted(
            as_float(r.get("reject_rate")) or 0.0 for r in rows if str(r.get("language") or "n/a") == language
        )
        medians[language] = rates[len(rates) // 2] if len(rates) % 2 else sum(rates[len(rates) // 2 - 1 : len(rates) // 2 + 1]) / 2
    cells: list[MatrixCell] = []
    for r in rows:
        language, generator = str(r.get("language") or "n/a"), str(r.get("generator") or "n/a")
        pairs, rejected = as_int(r.get("pairs")), as_int(r.get("rejected"))
        rate = as_float(r.get("reject_rate"))
        if rate is None:
            rate = ratio(rejected, pairs)
        reasons = as_dict(r.get("reasons"))
        if isinstance(audit_outliers, list):  # the audit decided (its bias check)
            outlier = (language, generator) in flagged_by_audit
        else:  # older or other outputs: far above the language's median across generators
            outlier = rate is not None and rate - medians[language] >= config.outlier_margin
        cells.append(
            MatrixCell(
                language=language,
                generator=generator,
                pairs=pairs,
                accepted=as_int(r.get("accepted")),
                rejected=rejected,
                warned=as_int(r.get("warned")),
                leaks=as_int(r.get("leaks")),
                reject_rate=rate,
                reason_rates={c: ratio(as_int(reasons.get(c)) or 0, pairs) for c in checks},
                language_mismatch=as_int(r.get("language_mismatch")),
                duplicates=as_int(r.get("duplicates")),
                cost_usd=as_float(r.get("cost_usd")),
                cost_per_accepted=as_float(r.get("cost_per_accepted")),
                outlier=outlier,
                shade=min(1.0, (rate or 0.0) / config.rate_scale_max),
            )
        )
    languages = ordered_languages(c.language for c in cells)
    generators = sorted({c.generator for c in cells})
    by_key = {(c.generator, c.language): c for c in cells}
    grid = [[by_key.get((g, lang)) for lang in languages] for g in generators]
    details = {
        (str(o.get("language")), str(o.get("generator"))): str(o["detail"])
        for o in as_list(as_dict(summary.get("bias")).get("outliers"))
        if isinstance(o, dict) and o.get("detail")
    }
    outliers = [
        details.get((c.language, c.generator))
        or f"{c.generator} rejects {c.reject_rate:.0%} of its {c.language} pairs vs a median of "
        f"{medians[c.language]:.0%} across generators"
        for c in cells
        if c.outlier and c.reject_rate is not None
    ]
    return Matrix(
        languages=languages,
        generators=generators,
        checks=checks,
        grid=grid,
        cells=sorted(cells, key=lambda c: (c.generator, languages.index(c.language))),
        overall_reject_rate=overall,
        outliers=outliers,
        scale_max=config.rate_scale_max,
    )


# --- coverage, bias, drift, malformed ----------------------------------------------------------------

def coverage_of(summary: dict[str, Any]) -> Coverage | None:
    chapters = [c for c in as_list(as_dict(summary.get("coverage")).get("chapters")) if isinstance(c, dict)]
    if not chapters:
        return None
    languages = ordered_languages(
        lang for c in chapters for lang in (*as_dict(c.get("planned")), *as_dict(c.get("accepted")))
    )
    rows = []
    covered = {lang: 0 for lang in languages}
    for c in chapters:
        planned, accepted = as_dict(c.get("planned")), as_dict(c.get("accepted"))
        cells = []
        for lang in languages:
            p, a = as_int(planned.get(lang)), as_int(accepted.get(lang))
            if p and a is None:  # the audit leaves out the languages where nothing was accepted
                a = 0
            if a:
                covered[lang] += 1
            cells.append(CoverageCell(planned=p, accepted=a, ratio=min(1.0, a / p) if p and a is not None else None))
        rows.append(CoverageRow(chapter=str(c.get("chapter", "?")), title=as_str(c.get("title")), cells=cells))
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


def bias_of(summary: dict[str, Any]) -> Bias | None:
    bias = as_dict(summary.get("bias"))
    if not bias:
        return None
    outliers = [str(o.get("detail") or short_value(o)) for o in as_list(bias.get("outliers")) if isinstance(o, dict)]
    fingerprint = as_dict(bias.get("fingerprint"))
    gaps = []
    for lang, share in as_dict(bias.get("coverage")).items():
        share = as_dict(share)
        missing = [str(m) for m in as_list(share.get("missing"))]
        text = f"{as_int(share.get('chapters_accepted'))} of {as_int(share.get('chapters_planned'))} planned chapters have accepted pairs"
        gaps.append((str(lang), text + (f"; none accepted in chapter {', '.join(missing)}" if missing else "")))
    handled = {"outliers", "fingerprint", "coverage", "cost"}  # cost is in the provenance and the matrix
    fit_rows, fit_note = fit_of(summary)
    return Bias(
        outliers=outliers,
        fingerprints=[_fingerprint(lang, as_dict(fingerprint[lang])) for lang in ordered_languages(fingerprint)],
        coverage_gaps=gaps,
        other=flatten({k: v for k, v in bias.items() if k not in handled}, depth=3, limit=60),
        fit=fit_rows,
        fit_note=fit_note,
    )


def fit_of(summary: dict[str, Any]) -> tuple[list[FitRow], str]:
    """The fit check's misfit-probability histogram per generator and language, as the audit counted it."""
    fit = as_dict(as_dict(as_dict(as_dict(summary.get("checks")).get("consistency")).get("info")).get("fit"))
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
    return rows, note


_SAFE_FILE = re.compile(r"^[\w.-]+\.html?$")


def drift_of(audit: AuditOutput, *, report_dir: Path | None, config: ReportConfig) -> list[DriftLanguage]:
    drift = as_dict(audit.summary.get("drift"))
    pages = as_dict(audit.summary.get("drift_reports"))
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


def malformed_of(summary: dict[str, Any], *, config: ReportConfig) -> tuple[list[MalformedLine], int]:
    rows = [r for r in as_list(summary.get("malformed")) if isinstance(r, dict)]
    shown = [
        MalformedLine(line=as_int(r.get("line")), error=short_value(r.get("error"), limit=300))
        for r in rows[: config.malformed_shown]
    ]
    total = counts_of(summary)["malformed"]
    return shown, max(total or 0, len(rows))

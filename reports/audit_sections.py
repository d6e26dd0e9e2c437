"""Turn an audit's summary.json (and its streamed rejects) into report sections.

The audit may add or rename optional figures; every reader here takes what is present and leaves the
rest as None, so a report renders from any audit output that has its counts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from generation.records import LANGUAGES
from reports.config import ReportConfig
from reports.context import (
    Bias,
    CheckSection,
    Coverage,
    CoverageCell,
    CoverageRow,
    DriftFeature,
    DriftLanguage,
    Example,
    Fingerprint,
    GateRow,
    Generator,
    MalformedLine,
    Matrix,
    MatrixCell,
    Provenance,
)
from reports.sources import AuditOutput, iter_flagged_records

CHECK_ORDER = ("validity", "consistency", "duplicate", "leakage", "language", "phi", "bias")
COUNT_KEYS = ("input_lines", "accepted", "rejected", "malformed", "warned")
TitleLookup = Callable[[str], "str | None"]


# --- small tolerant readers -------------------------------------------------------------------------

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _ratio(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole


def short_value(value: Any, *, limit: int = 160) -> str:
    """A figure in a few characters: numbers rounded, containers as compact JSON, long text cut."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flatten(data: Any, *, prefix: str = "", depth: int = 2, limit: int = 40) -> list[tuple[str, str]]:
    """Nested figures as (dotted key, short value) rows, at most `limit` of them."""
    rows: list[tuple[str, str]] = []
    if not isinstance(data, dict):
        return [(prefix or "value", short_value(data))]
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value and depth > 1:
            rows.extend(flatten(value, prefix=name, depth=depth - 1, limit=limit))
        else:
            rows.append((name, short_value(value)))
        if len(rows) >= limit:
            return rows[:limit]
    return rows


def ordered_languages(names: Iterable[str]) -> list[str]:
    names = set(names)
    known = [lang for lang in LANGUAGES if lang in names]
    return known + sorted(names - set(known))


def ordered_checks(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return [c for c in CHECK_ORDER if c in names] + sorted(c for c in names if c not in CHECK_ORDER)


# --- verdict -----------------------------------------------------------------------------------------

def counts_of(summary: dict[str, Any]) -> dict[str, int | None]:
    counts = _dict(summary.get("counts"))
    return {key: _int(counts.get(key)) for key in COUNT_KEYS}


_SHARES = ("rate", "share", "coverage")
_SYMBOLS = {"<=": "≤", ">=": "≥"}


def _gate_sentence(row: dict[str, Any]) -> str:
    """e.g. "reject rate (language:pt): 45.3%, allowed ≤ 40.0%: over by 5.3 points"."""
    name = str(row.get("name", "threshold")).replace("_", " ")
    scope = row.get("scope")
    where = f" ({scope})" if scope and scope != "overall" else ""
    value, threshold = _float(row.get("value")), _float(row.get("threshold"))
    comparison = str(row.get("comparison") or "")
    share = any(word in name for word in _SHARES)

    def show(x: float | None) -> str:
        return f"{x:.1%}" if share and x is not None else short_value(x)

    text = f"{name}{where}: {show(value)}"
    if threshold is not None:
        text += f", required {_SYMBOLS.get(comparison, comparison or 'vs')} {show(threshold)}"
    if row.get("passed") is False:
        margin = _float(row.get("margin"))
        if margin is None and value is not None and threshold is not None:
            margin = value - threshold
        if margin is not None:
            gap = f"{abs(margin) * 100:.1f} points" if share else short_value(abs(margin))
            text += f": {'over' if comparison == '<=' else 'short' if comparison == '>=' else 'off'} by {gap}"
    return text


def _gate_figures(row: dict[str, Any]) -> tuple[str, str, str]:
    """Value, requirement and margin as people read them: rates in percent, margins in points."""
    share = any(word in str(row.get("name", "")) for word in _SHARES)
    value, threshold, margin = (_float(row.get(k)) for k in ("value", "threshold", "margin"))
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
    for row in _list(_dict(summary.get("gate")).get("results")):
        if not isinstance(row, dict):
            continue
        passed = row.get("passed")
        rows.append(
            GateRow(
                name=str(row.get("name", "threshold")),
                scope=str(row.get("scope") or "overall"),
                value=_float(row.get("value")),
                threshold=_float(row.get("threshold")),
                comparison=str(row.get("comparison") or ""),
                passed=passed if isinstance(passed, bool) else None,
                margin=_float(row.get("margin")),
                sentence=_gate_sentence(row),
                shown=_gate_figures(row),
            )
        )
    return rows


# --- provenance --------------------------------------------------------------------------------------

def provenance_of(audit: AuditOutput) -> Provenance:
    summary, manifest = audit.summary, audit.manifest
    prov = _dict(summary.get("provenance"))
    source = _dict(prov.get("input")) or _dict(manifest.get("input"))
    generators = []
    for g in _list(prov.get("generators")):
        g = _dict(g)
        generators.append(
            Generator(
                name=str(g.get("name") or "n/a"),
                litellm_model=", ".join(map(str, g["litellm_model"])) if isinstance(g.get("litellm_model"), list)
                else _str(g.get("litellm_model")),
                prompt_ids=[str(p) for p in _list(g.get("prompt_ids"))],
                prompt_hashes=[str(p) for p in _list(g.get("prompt_hashes"))],
                pairs=_int(g.get("pairs")),
                input_tokens=_int(g.get("input_tokens")),
                output_tokens=_int(g.get("output_tokens")),
                cost_usd=_float(g.get("cost_usd")),
            )
        )

    def total(attr: str) -> Any:
        values = [getattr(g, attr) for g in generators if getattr(g, attr) is not None]
        return sum(values) if values else None

    versions = _dict(prov.get("versions")) or _dict(manifest.get("versions"))
    config = prov.get("config", manifest.get("config"))
    accepted = _dict(manifest.get("accepted"))
    return Provenance(
        input_path=_str(source.get("path")),
        input_sha256=_str(source.get("sha256")),
        input_lines=_int(source.get("lines")),
        accepted_sha256=_str(accepted.get("sha256") or manifest.get("accepted_sha256")),
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
    rows = [r for r in _list(summary.get("matrix")) if isinstance(r, dict)]
    if not rows:
        return None
    counts = counts_of(summary)
    judged = (counts["accepted"] or 0) + (counts["rejected"] or 0)
    overall = _ratio(counts["rejected"], judged)
    checks = ordered_checks(k for r in rows for k in _dict(r.get("reasons")))
    audit_outliers = _dict(summary.get("bias")).get("outliers")
    flagged_by_audit = {
        (str(o.get("language")), str(o.get("generator"))) for o in _list(audit_outliers) if isinstance(o, dict)
    }
    medians: dict[str, float] = {}
    for language in {str(r.get("language") or "n/a") for r in rows}:
        rates = sorted(
            _float(r.get("reject_rate")) or 0.0 for r in rows if str(r.get("language") or "n/a") == language
        )
        medians[language] = rates[len(rates) // 2] if len(rates) % 2 else sum(rates[len(rates) // 2 - 1 : len(rates) // 2 + 1]) / 2
    cells: list[MatrixCell] = []
    for r in rows:
        language, generator = str(r.get("language") or "n/a"), str(r.get("generator") or "n/a")
        pairs, rejected = _int(r.get("pairs")), _int(r.get("rejected"))
        rate = _float(r.get("reject_rate"))
        if rate is None:
            rate = _ratio(rejected, pairs)
        reasons = _dict(r.get("reasons"))
        if isinstance(audit_outliers, list):  # the audit decided (its bias check)
            outlier = (language, generator) in flagged_by_audit
        else:  # older or other outputs: far above the language's median across generators
            outlier = rate is not None and rate - medians[language] >= config.outlier_margin
        cells.append(
            MatrixCell(
                language=language,
                generator=generator,
                pairs=pairs,
                accepted=_int(r.get("accepted")),
                rejected=rejected,
                warned=_int(r.get("warned")),
                leaks=_int(r.get("leaks")),
                reject_rate=rate,
                reason_rates={c: _ratio(_int(reasons.get(c)) or 0, pairs) for c in checks},
                language_mismatch=_int(r.get("language_mismatch")),
                duplicates=_int(r.get("duplicates")),
                cost_usd=_float(r.get("cost_usd")),
                cost_per_accepted=_float(r.get("cost_per_accepted")),
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
        for o in _list(_dict(summary.get("bias")).get("outliers"))
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


# --- checks and their examples -----------------------------------------------------------------------

def describe_neighbour(neighbour: Any) -> str | None:
    """The pointer a check gives: the better-fitting sibling, the duplicate kept, the leaked eval item."""
    if neighbour in (None, "", {}):
        return None
    if not isinstance(neighbour, dict):
        return short_value(neighbour, limit=400)
    n = neighbour
    if "eval_mention" in n or "eval_code" in n:
        where = f" (evaluation line {n['eval_line']})" if n.get("eval_line") is not None else ""
        return f"leaks evaluation item “{n.get('eval_mention', 'n/a')}” → {n.get('eval_code', 'n/a')}{where}"
    if "mention" in n or ("id" in n and "code" not in n):
        kept = f"#{n['id']}" if n.get("id") else "a kept pair"
        text = f"duplicate of {kept}"
        return text + (f": “{n['mention']}”" if n.get("mention") else "")
    if "code" in n:
        title = f" {n['title']}" if n.get("title") else ""
        score = f" (score {short_value(_float(n.get('score')))})" if _float(n.get("score")) is not None else ""
        return f"better fit: {n['code']}{title}{score}"
    return "; ".join(f"{k}: {short_value(v, limit=120)}" for k, v in n.items())


def _example(record: dict[str, Any], reason: dict[str, Any], *, titles: TitleLookup, config: ReportConfig) -> Example:
    mention = str(record.get("mention", ""))
    code = _str(record.get("code"))
    title = _str(record.get("title")) or (titles(code) if code else None)
    others = [
        f"{r.get('check', '?')}: {short_value(r.get('detail'), limit=200)}"
        for r in record.get("reasons", [])
        if isinstance(r, dict) and r is not reason
    ]
    plain = {k: v for k, v in record.items() if k != "reasons"}
    return Example(
        id=_str(record.get("id")),
        mention=mention[: config.text_chars],
        mention_cut=len(mention) > config.text_chars,
        code=code,
        title=title,
        language=_str(record.get("language")),
        generator=_str(record.get("model") or record.get("generator")),
        score=_float(reason.get("score")),
        severity=_str(reason.get("severity")),
        reason=_str(reason.get("reason")),
        why=short_value(reason.get("detail") or reason.get("reason") or "", limit=600),
        neighbour=describe_neighbour(reason.get("neighbour")),
        other_reasons=others,
        record_json=json.dumps(
            {**plain, "reasons": record.get("reasons")}, indent=2, ensure_ascii=False, default=str
        )[:4000],
    )


def collect_examples(
    audit: AuditOutput, *, titles: TitleLookup, config: ReportConfig
) -> tuple[dict[str, list[Example]], dict[str, int]]:
    """Stream rejected.jsonl (then the warnings kept in accepted.jsonl) once. Per check: examples of
    every reason (rejections before warnings, the reasons taken in turn, so a rare reason is not
    hidden behind a frequent one), and how many records the check flagged in total. Memory is bounded
    by checks x reasons x the cap."""
    cap = config.examples_per_check
    pools: dict[str, dict[tuple[bool, str], list[Example]]] = {}
    totals: dict[str, int] = {}
    for path in (audit.rejected_path, audit.accepted_path):
        for record in iter_flagged_records(path):
            seen: set[str] = set()
            for reason in record["reasons"]:
                if not isinstance(reason, dict):
                    continue
                check = str(reason.get("check") or "unknown")
                if check in seen:
                    continue
                seen.add(check)
                totals[check] = totals.get(check, 0) + 1
                key = (reason.get("severity") == "warn", str(reason.get("reason") or ""))
                pool = pools.setdefault(check, {}).setdefault(key, [])
                if len(pool) < cap:
                    pool.append(_example(record, reason, titles=titles, config=config))
    examples: dict[str, list[Example]] = {}
    for check, by_reason in pools.items():
        chosen: list[Example] = []
        for warned in (False, True):
            queues = [list(v) for k, v in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0][1])) if k[0] is warned]
            while queues and len(chosen) < cap:
                for queue in queues:
                    if queue and len(chosen) < cap:
                        chosen.append(queue.pop(0))
                queues = [q for q in queues if q]
        examples[check] = chosen
    return examples, totals


def checks_of(audit: AuditOutput, *, titles: TitleLookup, config: ReportConfig) -> list[CheckSection]:
    checks = _dict(audit.summary.get("checks"))
    examples, totals = collect_examples(audit, titles=titles, config=config)
    sections = []
    for name in ordered_checks([*checks, *examples]):
        data = _dict(checks.get(name))
        reasons = sorted(
            ((str(k), _int(v) or 0) for k, v in _dict(data.get("reasons")).items()), key=lambda kv: (-kv[1], kv[0])
        )
        shown = examples.get(name, [])
        total = totals.get(name, 0)
        summary = data.get("summary")
        sections.append(
            CheckSection(
                name=name,
                flagged=_int(data.get("flagged")),
                rejected=_int(data.get("rejected")),
                warned=_int(data.get("warned")),
                summary=summary if isinstance(summary, (int, float, str)) and not isinstance(summary, bool) else None,
                summary_meaning=_str(data.get("summary_meaning")),
                reasons=reasons,
                info=flatten(_dict(data.get("info"))),
                examples=shown,
                examples_total=total,
                examples_more=max(0, total - len(shown)),
            )
        )
    return sections


# --- coverage, bias, drift, malformed ----------------------------------------------------------------

def coverage_of(summary: dict[str, Any]) -> Coverage | None:
    chapters = [c for c in _list(_dict(summary.get("coverage")).get("chapters")) if isinstance(c, dict)]
    if not chapters:
        return None
    languages = ordered_languages(
        lang for c in chapters for lang in (*_dict(c.get("planned")), *_dict(c.get("accepted")))
    )
    rows = []
    covered = {lang: 0 for lang in languages}
    for c in chapters:
        planned, accepted = _dict(c.get("planned")), _dict(c.get("accepted"))
        cells = []
        for lang in languages:
            p, a = _int(planned.get(lang)), _int(accepted.get(lang))
            if p and a is None:  # the audit leaves out the languages where nothing was accepted
                a = 0
            if a:
                covered[lang] += 1
            cells.append(CoverageCell(planned=p, accepted=a, ratio=min(1.0, a / p) if p and a is not None else None))
        rows.append(CoverageRow(chapter=str(c.get("chapter", "?")), title=_str(c.get("title")), cells=cells))
    return Coverage(languages=languages, rows=rows, chapters_covered=covered)


def _fingerprint(language: str, entry: dict[str, Any]) -> Fingerprint:
    generators, synthetic = _dict(entry.get("generators")), _dict(entry.get("synthetic_vs_real"))
    f1, chance = _float(generators.get("macro_f1")), _float(generators.get("chance_macro_f1"))
    auc = _float(synthetic.get("roc_auc"))

    def clip(x: float) -> float:
        return max(0.0, min(1.0, x))

    giveaways = []
    for label, part in (("generators", generators), ("synthetic vs real", synthetic)):
        for cls, features in _dict(part.get("top_features")).items():
            giveaways.append((f"{label}: {cls}", ", ".join(f"“{f}”" for f in _list(features)[:12])))
    return Fingerprint(
        language=language,
        generators_f1=f1,
        chance_f1=chance,
        generators_auc=_float(generators.get("roc_auc_ovr", generators.get("roc_auc"))),
        generators_note=_str(generators.get("skipped")),
        synthetic_auc=auc,
        synthetic_note=_str(synthetic.get("skipped")),
        generators_strength=clip((f1 - chance) / (1 - chance)) if f1 is not None and chance is not None and chance < 1 else 0.0,
        synthetic_strength=clip((auc - 0.5) / 0.5) if auc is not None else 0.0,
        giveaways=giveaways,
    )


def bias_of(summary: dict[str, Any]) -> Bias | None:
    bias = _dict(summary.get("bias"))
    if not bias:
        return None
    outliers = [str(o.get("detail") or short_value(o)) for o in _list(bias.get("outliers")) if isinstance(o, dict)]
    fingerprint = _dict(bias.get("fingerprint"))
    gaps = []
    for lang, share in _dict(bias.get("coverage")).items():
        share = _dict(share)
        missing = [str(m) for m in _list(share.get("missing"))]
        text = f"{_int(share.get('chapters_accepted'))} of {_int(share.get('chapters_planned'))} planned chapters have accepted pairs"
        gaps.append((str(lang), text + (f"; none accepted in chapter {', '.join(missing)}" if missing else "")))
    handled = {"outliers", "fingerprint", "coverage", "cost"}  # cost is in the provenance and the matrix
    return Bias(
        outliers=outliers,
        fingerprints=[_fingerprint(lang, _dict(fingerprint[lang])) for lang in ordered_languages(fingerprint)],
        coverage_gaps=gaps,
        other=flatten({k: v for k, v in bias.items() if k not in handled}, depth=3, limit=60),
    )


_SAFE_FILE = re.compile(r"^[\w.-]+\.html?$")


def drift_of(audit: AuditOutput, *, report_dir: Path | None, config: ReportConfig) -> list[DriftLanguage]:
    drift = _dict(audit.summary.get("drift"))
    pages = _dict(audit.summary.get("drift_reports"))
    sections = []
    for lang in ordered_languages([*drift, *pages]):
        figures = _dict(drift.get(lang))
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
        means = _dict(figures.get("means"))
        features = [
            DriftFeature(
                name=str(name),
                score=_float(_dict(f).get("score")),
                method=_str(_dict(f).get("method")),
                threshold=_float(_dict(f).get("threshold")),
                drifted=_dict(f).get("drifted") if isinstance(_dict(f).get("drifted"), bool) else None,
                synthetic_mean=_float(_dict(means.get(name)).get("synthetic")),
                reference_mean=_float(_dict(means.get(name)).get("reference")),
            )
            for name, f in _dict(figures.get("features")).items()
        ]
        shown = ("drifted", "drift_detected", "features", "means", "drifted_features", "drift_share", "skipped")
        sections.append(
            DriftLanguage(
                language=lang,
                drifted=flag if isinstance(flag, bool) else None,
                drift_share=_float(figures.get("drift_share")),
                features=features,
                skipped=_str(figures.get("skipped")),
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
    rows = [r for r in _list(summary.get("malformed")) if isinstance(r, dict)]
    shown = [
        MalformedLine(line=_int(r.get("line")), error=short_value(r.get("error"), limit=300))
        for r in rows[: config.malformed_shown]
    ]
    total = counts_of(summary)["malformed"]
    return shown, max(total or 0, len(rows))

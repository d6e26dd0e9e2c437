"""Flagged examples per check, streamed from rejected.jsonl (and the warnings in accepted.jsonl) with
a bounded memory: the first few of every reason, rejections before warnings, each with the pointer
its check gave (the better-fitting code, the duplicate kept, the evaluation item leaked)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from clinassay.reports.config import ReportConfig
from clinassay.reports.context import CheckSection, Example
from clinassay.reports.sources import AuditOutput, iter_flagged_records
from clinassay.reports.values import as_float, as_str, flatten, ordered_checks, short_value

TitleLookup = Callable[[str], "str | None"]
MAX_REASON_POOLS = 64


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
        score = f" (score {short_value(as_float(n.get('score')))})" if as_float(n.get("score")) is not None else ""
        return f"better fit: {n['code']}{title}{score}"
    return "; ".join(f"{k}: {short_value(v, limit=120)}" for k, v in n.items())


def _example(record: dict[str, Any], reason: dict[str, Any], *, titles: TitleLookup, config: ReportConfig) -> Example:
    mention = str(record.get("mention", ""))
    code = as_str(record.get("code"))
    title = as_str(record.get("title")) or (titles(code) if code else None)
    others = [
        f"{r.get('check', '?')}: {short_value(r.get('detail'), limit=200)}"
        for r in record.get("reasons", [])
        if isinstance(r, dict) and r is not reason
    ]
    plain = {k: v for k, v in record.items() if k != "reasons"}
    return Example(
        id=as_str(record.get("id")),
        mention=mention[: config.text_chars],
        mention_cut=len(mention) > config.text_chars,
        code=code,
        title=title,
        language=as_str(record.get("language")),
        generator=as_str(record.get("model") or record.get("generator")),
        score=as_float(reason.get("score")),
        severity=as_str(reason.get("severity")),
        reason=as_str(reason.get("reason")),
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
                by_reason = pools.setdefault(check, {})
                key = (reason.get("severity") == "warn", str(reason.get("reason") or ""))
                if key not in by_reason and len(by_reason) >= MAX_REASON_POOLS:
                    key = (key[0], "")  # an audit that names a new reason per pair still stays bounded
                pool = by_reason.setdefault(key, [])
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
    checks = audit.summary.checks
    examples, totals = collect_examples(audit, titles=titles, config=config)
    sections = []
    for name in ordered_checks([*checks, *examples]):
        data = checks.get(name)
        shown = examples.get(name, [])
        total = totals.get(name, 0)
        sections.append(
            CheckSection(
                name=name,
                flagged=data.flagged if data else None,
                rejected=data.rejected if data else None,
                warned=data.warned if data else None,
                summary=data.summary if data else None,
                summary_meaning=data.summary_meaning if data else None,
                reasons=sorted(data.reasons.items(), key=lambda kv: (-kv[1], kv[0])) if data else [],
                info=flatten(data.info) if data else [],
                examples=shown,
                examples_total=total,
                examples_more=max(0, total - len(shown)),
            )
        )
    return sections

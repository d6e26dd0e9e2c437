"""The spelling check alone, measured: how many correct clinician mentions it flags (CodiEsp dev
diagnoses, real Spanish: every flag there is either a clinician's own typo or a false alarm), recall on
the labelled misspellings of tests/data/audit/bad_pairs.jsonl and on one-edit typos planted in the CodiEsp
mentions it passes, and its speed with warm lexicons.

    python bench/audit_spelling.py [--limit 2000] [--show 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clinassay.audit import AuditConfig  # noqa: E402
from clinassay.audit.checks import AuditResources  # noqa: E402
from clinassay.audit.checks.spelling import SpellingCheck  # noqa: E402
from clinassay.audit.items import Chunk, Item  # noqa: E402
from clinassay.audit.text import normalize_text  # noqa: E402
from clinassay.terminology import load_terminology  # noqa: E402

DATA = ROOT / "tests" / "data" / "audit"
CODIESP = ROOT.parent / "shared" / "data" / "codiesp" / "dev" / "devX.tsv"


def codiesp_mentions(path: Path, limit: int | None) -> list[str]:
    """Distinct diagnosis mentions (after normalisation), in file order."""
    seen, out = set(), []
    with path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) >= 4 and row[1] == "DIAGNOSTICO" and normalize_text(row[3]) not in seen:
                seen.add(normalize_text(row[3]))
                out.append(row[3])
    return out[:limit] if limit else out


def _items(rows: list[dict]) -> list[Item]:
    return [Item(n, r, r["mention"], r["code"], r["language"], r.get("model", "")) for n, r in enumerate(rows, 1)]


def planted_recall(check: SpellingCheck, mentions: list[str], seed: int) -> dict:
    """The fault planter's one-edit typos (audit/planting.misspell) in CodiEsp mentions the check passes as
    written: the share rejected as misspellings, per kind of edit. An edit that makes another real word
    ('mamas' -> 'manas') cannot be seen by a lexicon; it counts as missed."""
    import random

    from clinassay.audit.planting import misspell

    planted = [(m, *typo) for m in mentions if (typo := misspell(m, random.Random(f"{seed}:{m}"))) is not None]
    found = check.check_chunk(Chunk(_items([{"mention": typo, "code": "R69", "language": "es"} for _, typo, _ in planted])))
    per_edit: dict[str, list[int]] = {}
    for (_, _, edit), findings in zip(planted, found):
        hit = any(f.reason == "misspelling" and f.severity == "fail" for f in findings)
        per_edit.setdefault(edit, [0, 0])[0] += hit
        per_edit[edit][1] += 1
    caught = sum(v[0] for v in per_edit.values())
    return {"typos": len(planted), "rejected": caught, "recall": round(caught / max(1, len(planted)), 4),
            "per_edit": {k: round(v[0] / v[1], 3) for k, v in sorted(per_edit.items())}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N distinct CodiEsp mentions (default: all)")
    parser.add_argument("--show", type=int, default=40, help="flagged CodiEsp mentions to print")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1, help="seed of the planted typos")
    args = parser.parse_args()

    config = AuditConfig()
    terminology = load_terminology()
    resources = AuditResources(terminology=terminology)
    result: dict = {}

    rows = [json.loads(line) for line in (DATA / "bad_pairs.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    check = SpellingCheck(config, resources)
    started = time.perf_counter()
    findings = check.check_chunk(Chunk(_items(rows)))
    result["lexicons_seconds"] = round(time.perf_counter() - started, 2)  # cold: builds the lexicons
    per_language: dict[str, list[int]] = {}
    misses, clean_flagged = [], []
    for row, found in zip(rows, findings):
        expect = row.get("expect")
        if expect and expect.get("check") == "spelling":
            hit = any(f.reason == "misspelling" for f in found)
            per_language.setdefault(row["language"], [0, 0])[0] += hit
            per_language[row["language"]][1] += 1
            if not hit:
                misses.append(f"{row['mention']} [{row['language']}]")
        elif expect is None and found:
            clean_flagged.append((row["mention"], [f.detail for f in found]))
    found_total = sum(v[0] for v in per_language.values())
    total = sum(v[1] for v in per_language.values())
    result["bad_pairs"] = {"recall": round(found_total / total, 3) if total else None, "found": found_total,
                           "total": total, "per_language": per_language, "misses": misses,
                           "clean_flagged": clean_flagged}

    if CODIESP.is_file():
        mentions = codiesp_mentions(CODIESP, args.limit)
        items = _items([{"mention": m, "code": "R69", "language": "es"} for m in mentions])
        check = SpellingCheck(config, resources)
        check.lexicon("es")  # loaded from the cache: what is timed below is the check itself
        started = time.perf_counter()
        found = check.check_chunk(Chunk(items))
        seconds = time.perf_counter() - started
        flagged = [(m, f) for m, f in zip(mentions, found) if f]
        words = Counter(x.neighbour["word"].lower() for _, f in flagged for x in f)
        result["codiesp"] = {"mentions": len(mentions), "flagged": len(flagged),
                             "flag_rate": round(len(flagged) / len(mentions), 4),
                             "pairs_per_second": round(len(mentions) / seconds), "seconds": round(seconds, 3),
                             "info": check.summary().to_json()["info"], "top_words": dict(words.most_common(30))}
        result["codiesp_examples"] = [f"{m} -> " + "; ".join(x.detail for x in f) for m, f in flagged[: args.show]]
        result["planted"] = planted_recall(check, [m for m, f in zip(mentions, found) if not f], args.seed)

    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

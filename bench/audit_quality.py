"""Audit quality, measured: recall per kind on the labelled bad pairs (tests/data/audit/bad_pairs.jsonl,
leaks against bad_eval.tsv), and precision on real clinician mentions: CodiEsp dev diagnoses with their
gold codes are correct pairs, so every rejection there is a false alarm (target: at most 10%).

    python bench/audit_quality.py                  # both parts, me5-small (embeddings cached on disk)
    python bench/audit_quality.py --no-embeddings  # rules only
    python bench/audit_quality.py --json out.json
    python bench/audit_quality.py --verifier       # [audit.fit] verifier = true (clinassay train-verifier first)
    python bench/audit_quality.py --reference-split train  # CodiEsp train as the audit's coded reference
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from clinassay.audit import AuditConfig, Auditor, Malformed, audit_pairs  # noqa: E402
from clinassay.audit.references import EvalSet, read_labelled  # noqa: E402

DATA = ROOT / "tests" / "data" / "audit"
CODIESP = ROOT.parent / "shared" / "data" / "codiesp" / "dev" / "devX.tsv"
RULE_KINDS = {"wrong_language", "negation", "laterality", "sex", "phi", "exact_duplicate", "leak_text"}


def _encoder(name: str | None, verifier: str | None = None):
    if name is None:
        return None
    from clinassay.retrieval.encoder_cache import DiskCachedEncoder
    from clinassay.retrieval.models import load_encoder

    model = None
    if verifier is not None:
        from clinassay.retrieval.verifier import load_verifier

        model = load_verifier(verifier)
    return DiskCachedEncoder(load_encoder(name), queries=True, verifier=model)


def bad_pairs_recall(config: AuditConfig, encoder, terminology) -> dict:
    rows = [json.loads(l) for l in (DATA / "bad_pairs.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    normalize = lambda c: (terminology.find(c).code if terminology.find(c) else c)  # noqa: E731
    eval_set = EvalSet(read_labelled(DATA / "bad_eval.tsv", normalize_code=normalize), path="bad_eval.tsv")
    auditor = Auditor(config, terminology=terminology, encoder=encoder, eval_set=eval_set)
    pairs = [{k: v for k, v in r.items() if k != "expect"} for r in rows]
    decisions = list(audit_pairs(pairs, auditor=auditor))
    per_kind: dict[str, list] = defaultdict(lambda: [0, 0])
    misses: dict[str, list[str]] = defaultdict(list)
    clean_flagged = []
    for row, d in zip(rows, decisions):
        expect = row["expect"]
        if expect is None:
            if not d.accepted:
                clean_flagged.append((row["mention"], [f.reason for f in d.findings]))
            continue
        hit = any(f.check == expect["check"] and f.severity == "fail" for f in d.findings)
        per_kind[expect["kind"]][0] += hit
        per_kind[expect["kind"]][1] += 1
        per_kind[expect["kind"]].append(any(f.check == expect["check"] for f in d.findings))
        if not hit:
            misses[expect["kind"]].append(f"{row['mention']} [{row['code']}, {row['language']}] -> "
                                          f"{[(f.check, f.reason) for f in d.findings]}")
    recall = {k: {"found": v[0], "total": v[1], "recall": round(v[0] / v[1], 3),
                  "flagged_incl_warnings": sum(v[2:]),
                  "floor": 0.9 if k in RULE_KINDS else None} for k, v in sorted(per_kind.items())}
    return {"recall": recall, "misses": dict(misses), "clean_rejected": clean_flagged, "clean_total":
            sum(1 for r in rows if r["expect"] is None)}


def codiesp_pairs(path: Path, limit: int | None, stats: Counter):
    """Unique (normalised mention, code) pairs: CodiEsp repeats mentions across documents, and a repeat is
    a duplicate, not a wrong pair; how many repeats there were is reported separately."""
    from clinassay.audit.text import normalize_text

    seen = set()
    with path.open(encoding="utf-8") as handle:
        for n, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if len(row) >= 4 and row[1] == "DIAGNOSTICO":
                stats["rows"] += 1
                key = (normalize_text(row[3]), row[2].upper())
                if key in seen:
                    stats["repeats"] += 1
                    continue
                seen.add(key)
                yield {"id": f"codiesp-dev-{n}", "mention": row[3], "code": row[2].upper(), "language": "es",
                       "model": "codiesp:dev"}
                if limit is not None:
                    limit -= 1
                    if limit <= 0:
                        return


def coded_reference(split: str | None, terminology):
    """A CodiEsp split as the audit's `--reference` (what `clinassay data import-codiesp` writes), or None."""
    if split is None:
        return None
    from clinassay.audit.references import CodedReference
    from clinassay.retrieval.evalset import import_codiesp

    items, _ = import_codiesp(CODIESP.parent.parent / split, terminology)
    return CodedReference.from_mentions(items, path=f"codiesp:{split}")


def codiesp_precision(config: AuditConfig, encoder, terminology, limit: int | None, reference=None) -> dict:
    auditor = Auditor(config, terminology=terminology, encoder=encoder, reference=reference)
    started = time.perf_counter()
    stats: Counter = Counter()
    decisions = [d for d in audit_pairs(codiesp_pairs(CODIESP, limit, stats), auditor=auditor)
                 if not isinstance(d, Malformed)]
    seconds = time.perf_counter() - started
    rejected = [d for d in decisions if not d.accepted]
    by_check, by_reason = Counter(), Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for d in rejected:
        for check in {f.check for f in d.findings if f.severity == "fail"}:
            by_check[check] += 1
        for f in d.findings:
            if f.severity == "fail":
                by_reason[f"{f.check}.{f.reason}"] += 1
                if len(examples[f.reason]) < 5:
                    examples[f.reason].append(f"{d.record['mention']} [{d.record['code']}]: {f.detail}")
    n = len(decisions)
    return {"diagnosis_rows": stats["rows"], "repeated_rows_dropped": stats["repeats"],
            "pairs": n, "rejected": len(rejected), "reject_rate": round(len(rejected) / n, 4),
            "reject_rate_per_check": {k: round(v / n, 4) for k, v in by_check.most_common()},
            "reject_rate_per_reason": {k: round(v / n, 4) for k, v in by_reason.most_common()},
            "reject_rate_excluding_codes_unknown_to_icd10cm": round(
                sum(1 for d in rejected if not any(f.reason in ("unknown_code", "malformed_code") for f in d.findings))
                / max(1, sum(1 for d in decisions if not any(f.reason in ("unknown_code", "malformed_code") for f in d.findings))), 4),
            "warned": sum(1 for d in decisions if d.warned), "seconds": round(seconds, 1), "examples": dict(examples),
            "consistency_info": next(c for c in auditor.checks if c.name == "consistency").info(),
            "mean_mention_chars": round(sum(len(d.record["mention"]) for d in decisions) / max(1, n), 1)}


FIT_REASONS = {"other_chapter", "same_chapter", "sibling"}
SWAP_TARGETS = {"correct": ("<=", 0.05), "other_chapter": (">=", 0.95), "same_chapter": (">=", 0.85), "sibling": (">=", 0.5)}


def codiesp_swaps(config: AuditConfig, encoder, terminology, *, split: str, per_kind: int, seed: int,
                  reference=None) -> dict:
    """CodiEsp diagnoses of `split` with their gold codes ("correct") and with codes swapped to another
    chapter, another category of the same chapter, a sibling in the same category: disjoint mentions,
    `per_kind` of each. Share rejected per kind at every operating point (the default one is the
    configured one)."""
    from clinassay.audit.faults import CodeSwapper, swap_sets
    from clinassay.retrieval.evalset import import_codiesp

    items, _ = import_codiesp(CODIESP.parent.parent / split, terminology)
    pool = [{"id": f"codiesp-{split}-{n}", "mention": i.mention, "code": i.code, "language": i.language,
             "model": f"codiesp:{split}"} for n, i in enumerate(items)]
    pool, repeats = distinct_mentions(pool, config, encoder, terminology)
    groups = swap_sets(pool, CodeSwapper(terminology), per_kind=per_kind, seed=seed)
    curve = {}
    for point in ("lenient", "balanced", "strict", "review"):
        cfg = config.model_copy(update={"fit": config.fit.model_copy(update={"operating_point": point})})
        auditor = Auditor(cfg, terminology=terminology, encoder=encoder, reference=reference)
        consistency = next(c for c in auditor.checks if c.name == "consistency")
        row = {}
        for kind, pairs in groups.items():
            asked_before = consistency.info().get("fit", {}).get("verifier", {}).get("asked", 0)
            decisions = [d for d in audit_pairs([{k: v for k, v in p.items() if k not in ("gold_code", "fault")}
                                                 for p in pairs], auditor=auditor) if not isinstance(d, Malformed)]
            rejected = [d for d in decisions if not d.accepted]
            by_fit = [d for d in rejected if any(f.reason in FIT_REASONS and f.severity == "fail" for f in d.findings)]
            flagged = [d for d in decisions if d.findings]
            by_check = Counter(check for d in rejected for check in {f.check for f in d.findings if f.severity == "fail"})
            row[kind] = {"pairs": len(decisions), "rejected": round(len(rejected) / max(1, len(decisions)), 4),
                         "rejected_by_fit": round(len(by_fit) / max(1, len(decisions)), 4),
                         "rejected_per_check": dict(by_check.most_common()),
                         "flagged_incl_warnings": round(len(flagged) / max(1, len(decisions)), 4),
                         "verifier_asked": round((consistency.info()["fit"]["verifier"]["asked"] - asked_before)
                                                 / max(1, len(decisions)), 4)}
            if point == config.fit.operating_point:
                misses = [d for d in decisions if d.accepted] if kind != "correct" else rejected
                row[kind]["examples"] = [f"{d.record['mention']} [{d.record['code']}] "
                                         f"{[f.reason for f in d.findings]}" for d in misses[:8]]
        curve[point] = row
    return {"split": split, "per_kind": per_kind, "seed": seed, "default": config.fit.operating_point, "curve": curve,
            "reference": None if reference is None else reference.path, "near_repeats_dropped": repeats}


def distinct_mentions(pool: list[dict], config: AuditConfig, encoder, terminology) -> tuple[list[dict], int]:
    """The pool without the mentions the audit's own duplicate check calls a repeat of an earlier one under
    the same code ('catarata' / 'cataratas', 'masa abdominal' / 'masas abdominales'): as with the exact
    repeats dropped in `codiesp_pairs`, a repeat is a duplicate, not a wrong pair, and a sample holding
    both would measure the duplicate check instead of the fit of a code. Returns (pool, how many distinct
    mentions left it: exact repeats of a kept mention are not counted, the sampler drops those anyway)."""
    from clinassay.audit.text import normalize_text

    auditor = Auditor(config, terminology=terminology, encoder=encoder)
    repeats = {d.record["id"] for d in audit_pairs(pool, auditor=auditor) if not isinstance(d, Malformed)
               and any(f.check == "duplicate" and f.severity == "fail" for f in d.findings)}
    kept = [p for p in pool if p["id"] not in repeats]
    gone = {normalize_text(p["mention"]) for p in pool} - {normalize_text(p["mention"]) for p in kept}
    return kept, len(gone)


def _print_bad_pairs(bad: dict) -> None:
    print("recall per kind on tests/data/audit/bad_pairs.jsonl:")
    for kind, r in bad["recall"].items():
        floor = f" (floor {r['floor']})" if r["floor"] else ""
        print(f"  {kind:16s} {r['found']:3d}/{r['total']:<3d} rejected, recall {r['recall']:.3f}{floor}; "
              f"flagged incl. warnings {r['flagged_incl_warnings']}/{r['total']}")
    print(f"  clean pairs rejected: {len(bad['clean_rejected'])}/{bad['clean_total']}")
    for kind, misses in bad["misses"].items():
        for miss in misses:
            print(f"    missed {kind}: {miss}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="me5-small")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--codiesp-limit", type=int, default=None)
    parser.add_argument("--skip-codiesp", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--swap-split", default="dev", help="CodiEsp split for the code-swap measurement (never the one "
                                                            "bench/fit_operating_points.py fitted on: train)")
    parser.add_argument("--per-kind", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-swaps", action="store_true")
    parser.add_argument("--skip-bad-pairs", action="store_true")
    parser.add_argument("--reference-split", default=None, help="a CodiEsp split (train) as the audit's coded "
                                                                "reference; never the split measured")
    parser.add_argument("--verifier", action="store_true", help="[audit.fit] verifier = true: the learned verifier "
                                                                "(trained by `clinassay train-verifier`)")
    args = parser.parse_args()
    from clinassay.terminology import load_terminology

    terminology = load_terminology()
    config = AuditConfig.model_validate({"embeddings": not args.no_embeddings, "fit": {"verifier": args.verifier}})
    encoder = None if args.no_embeddings else _encoder(args.encoder, config.fit.verifier_name if args.verifier else None)
    if args.reference_split is not None and args.reference_split == args.swap_split:
        parser.error("--reference-split must not be the split measured (--swap-split)")
    reference = coded_reference(args.reference_split, terminology)
    result = {"encoder": None if encoder is None else args.encoder, "verifier": args.verifier,
              "reference": args.reference_split}
    if not args.skip_bad_pairs:
        result["bad_pairs"] = bad_pairs_recall(config, encoder, terminology)
        _print_bad_pairs(result["bad_pairs"])
    if not args.skip_codiesp:
        if not CODIESP.is_file():
            print(f"CodiEsp not found at {CODIESP}: precision part skipped")
        else:
            p = codiesp_precision(config, encoder, terminology, args.codiesp_limit, reference)
            result["codiesp"] = p
            print(f"CodiEsp dev: {p['diagnosis_rows']} diagnosis rows, {p['repeated_rows_dropped']} exact repeats "
                  f"of a (mention, code) pair dropped before the audit")
            print(f"CodiEsp dev unique diagnoses as correct pairs: {p['rejected']}/{p['pairs']} rejected = "
                  f"{p['reject_rate']:.1%} (target <= 10%), {p['seconds']} s")
            print(f"  excluding codes unknown to ICD-10-CM: {p['reject_rate_excluding_codes_unknown_to_icd10cm']:.1%}")
            for check, rate in p["reject_rate_per_check"].items():
                print(f"  {check:12s} {rate:.1%}")
            for reason, rate in p["reject_rate_per_reason"].items():
                print(f"    {reason:32s} {rate:.2%}")
    if not args.skip_swaps and CODIESP.is_file():
        swaps = codiesp_swaps(config, encoder, terminology, split=args.swap_split, per_kind=args.per_kind, seed=args.seed,
                              reference=reference)
        result["codiesp_swaps"] = swaps
        print(f"CodiEsp {args.swap_split} code swaps ({args.per_kind} disjoint mentions per kind, seed {args.seed}; "
              f"{swaps['near_repeats_dropped']} distinct mentions left out of the pool as near repeats of another "
              f"under the same code): share rejected (any check) / by the fit check, per operating point; "
              f"default {swaps['default']}")
        for point, row in swaps["curve"].items():
            cells = "  ".join(f"{kind} {r['rejected']:.3f}/{r['rejected_by_fit']:.3f}" for kind, r in row.items())
            asked = "  ".join(f"{kind} {r['verifier_asked']:.2f}" for kind, r in row.items())
            print(f"  {point:9s} {cells}" + (f"   (share sent to the verifier: {asked})" if args.verifier else ""))
        correct = swaps["curve"][swaps["default"]]["correct"]
        print(f"  correct pairs rejected at {swaps['default']}, per check (a pair may count under several): "
              + ", ".join(f"{check} {n}" for check, n in correct["rejected_per_check"].items()))
        for kind, (op, target) in SWAP_TARGETS.items():
            value = swaps["curve"][swaps["default"]][kind]["rejected"]
            met = value <= target if op == "<=" else value >= target
            print(f"  target {kind} {op} {target}: {value:.3f} {'met' if met else 'NOT met'}")
        for kind, r in swaps["curve"][swaps["default"]].items():
            for example in r.get("examples", []):
                print(f"    {'rejected' if kind == 'correct' else 'missed'} {kind}: {example}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Report size and render time for synthetic audit outputs of 1k, 10k and 100k pairs.

Claim (issue 5): a report of 100,000 pairs stays under 5 MB, because tables are capped and plots are
aggregated; render time grows with the streamed rejects only.

    python bench/report_size.py [--sizes 1000 10000 100000] [--long] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from clinassay.generation.records import LANGUAGES
from clinassay.reports.build import build_report_context
from clinassay.reports.render import render

GENERATORS = ("gemma-270m", "gpt-4o-mini", "claude-haiku", "llama-3-8b")
CHECKS = {
    "validity": ["mention_is_code", "too_short", "not_billable"],
    "consistency": ["sibling_fits_better", "negation", "laterality", "sex", "excludes1", "title_copy"],
    "duplicate": ["exact", "near"],
    "leakage": ["exact", "near", "translation"],
    "language": ["wrong_language", "mixed", "ca_as_es"],
    "phi": ["name", "date", "phone", "email", "id_number"],
}
WORDS = "dolor torácico agudo infección urinaria fiebre persistente cefalea tensional fractura cerrada fémur izquierdo derecho diabetes tipo insulina hipertensión esencial".split()
CHAPTERS = [(str(i), f"Chapter {i} of ICD-10-CM") for i in range(1, 23)]


def synthesise(out: Path, n: int, *, seed: int = 0, words: tuple[int, int] = (2, 9)) -> None:
    """An audit output folder of `n` pairs in the agreed shape (one bad generator-language cell)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    cells: dict[tuple[str, str], dict] = {}
    check_counts = {c: {"flagged": 0, "rejected": 0, "warned": 0, "reasons": {}} for c in CHECKS}
    accepted_n = rejected_n = warned_n = 0
    with open(out / "accepted.jsonl", "w", encoding="utf-8") as acc, open(out / "rejected.jsonl", "w", encoding="utf-8") as rej:
        for i in range(n):
            lang, gen = rng.choice(LANGUAGES), rng.choice(GENERATORS)
            cell = cells.setdefault((lang, gen), {"pairs": 0, "accepted": 0, "rejected": 0, "reasons": {}, "cost": 0.0})
            cell["pairs"] += 1
            cost = 0.00002 if gen != "gemma-270m" else 0.0
            cell["cost"] += cost
            record = {
                "id": f"{i:016x}", "mention": " ".join(rng.choices(WORDS, k=rng.randint(*words))),
                "code": f"R{rng.randint(0, 99):02d}.{rng.randint(0, 9)}", "language": lang, "model": gen,
                "prompt_id": "positive-v1", "input_tokens": 120, "output_tokens": 30, "cost_usd": cost,
            }
            reject_p = 0.6 if (gen, lang) == ("gemma-270m", "ca") else 0.2
            if rng.random() < reject_p:
                reasons = []
                for check in rng.sample(list(CHECKS), k=rng.choice((1, 1, 2))):
                    key = rng.choice(CHECKS[check])
                    reasons.append({"check": check, "score": round(rng.random(), 3), "severity": "fail",
                                    "detail": f"{key.replace('_', ' ')}: synthetic reason for pair {i}",
                                    "neighbour": {"code": "R07.9", "title": "Chest pain, unspecified"} if check == "consistency" else None})
                    counts = check_counts[check]
                    counts["flagged"] += 1
                    counts["rejected"] += 1
                    counts["reasons"][key] = counts["reasons"].get(key, 0) + 1
                    cell["reasons"][check] = cell["reasons"].get(check, 0) + 1
                rej.write(json.dumps({**record, "reasons": reasons}, ensure_ascii=False) + "\n")
                rejected_n += 1
                cell["rejected"] += 1
            else:
                if rng.random() < 0.05:
                    record["reasons"] = [{"check": "consistency", "score": 0.1, "severity": "warn",
                                          "detail": "copies the code's title", "neighbour": None}]
                    check_counts["consistency"]["warned"] += 1
                    check_counts["consistency"]["flagged"] += 1
                    warned_n += 1
                acc.write(json.dumps(record, ensure_ascii=False) + "\n")
                accepted_n += 1
                cell["accepted"] += 1
    for counts in check_counts.values():
        counts["summary"] = counts["flagged"] / n
        counts["info"] = {}
    matrix = [
        {"language": lang, "generator": gen, "pairs": c["pairs"], "accepted": c["accepted"], "rejected": c["rejected"],
         "reject_rate": c["rejected"] / c["pairs"], "reasons": c["reasons"], "language_mismatch": c["reasons"].get("language", 0),
         "duplicates": c["reasons"].get("duplicate", 0), "cost_usd": c["cost"],
         "cost_per_accepted": c["cost"] / c["accepted"] if c["accepted"] else None}
        for (lang, gen), c in sorted(cells.items())
    ]
    per_lang = n // (len(LANGUAGES) * len(CHAPTERS)) + 1
    summary = {
        "verdict": "fail",
        "counts": {"input_lines": n, "accepted": accepted_n, "rejected": rejected_n, "malformed": 0, "warned": warned_n},
        "gate": {"passed": False, "results": [
            {"name": "max_reject_rate", "scope": "overall", "value": rejected_n / n, "threshold": 0.3, "comparison": "<=", "passed": True, "margin": 0.3 - rejected_n / n},
            {"name": "max_reject_rate", "scope": "generator:gemma-270m", "value": 0.27, "threshold": 0.25, "comparison": "<=", "passed": False, "margin": -0.02}]},
        "checks": check_counts,
        "matrix": matrix,
        "coverage": {"chapters": [
            {"chapter": ch, "title": title, "planned": {lang: per_lang for lang in LANGUAGES},
             "accepted": {lang: int(per_lang * rng.uniform(0.3, 1.0)) for lang in LANGUAGES}} for ch, title in CHAPTERS]},
        "bias": {"fingerprint": {lang: {"generator_accuracy": round(rng.uniform(0.3, 0.9), 3)} for lang in LANGUAGES}},
        "drift": None, "drift_reports": {},
        "provenance": {"input": {"path": "pairs.jsonl", "sha256": "0" * 64, "lines": n},
                       "generators": [{"name": g, "litellm_model": g, "prompt_ids": ["positive-v1"], "prompt_hashes": ["ab" * 8],
                                       "pairs": sum(c["pairs"] for (l, gg), c in cells.items() if gg == g),
                                       "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0} for g in GENERATORS],
                       "config": {}, "versions": {"clinassay": "0.1.0"}},
        "malformed": [],
    }
    (out / "summary.json").write_text(json.dumps(summary), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--keep", type=Path, help="keep the synthetic outputs and reports here")
    parser.add_argument("--long", action="store_true", help="also a worst case: 100k pairs of ~1,500-character mentions")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="report-size-"))
    print(f"{'pairs':>8} {'rejected.jsonl':>15} {'html':>9} {'markdown':>9} {'json':>9} {'render s':>9}")
    cases = [(n, (2, 9)) for n in args.sizes] + ([(100_000, (180, 220))] if args.long else [])
    for n, words in cases:
        folder = root / f"audit_{n}_{words[1]}"
        synthesise(folder, n, words=words)
        start = time.perf_counter()
        context = build_report_context(folder, titles=lambda code: None)
        html = render(context, "html")
        seconds = time.perf_counter() - start
        (folder / "report.html").write_text(html, encoding="utf-8")
        sizes = {fmt: len(render(context, fmt).encode("utf-8")) for fmt in ("markdown", "json")}
        html_mb = len(html.encode("utf-8")) / 1e6
        print(f"{n:>8,} {(folder / 'rejected.jsonl').stat().st_size / 1e6:>13.1f}MB {html_mb:>7.2f}MB "
              f"{sizes['markdown'] / 1e3:>7.1f}kB {sizes['json'] / 1e6:>7.2f}MB {seconds:>9.2f}"
              f"  {'OK' if html_mb < 5 else 'OVER 5 MB'}")
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()

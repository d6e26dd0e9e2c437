"""Retrieval quality, measured on real data without leakage: the zero-shot baselines (bm25,
minilm-en, me5-small) against the two-stage model trained by clinassay's own chain.

    CLINASSAY_THREADS=2 python bench/retrieval_quality.py --work /tmp/clinassay-quality

(about 45 minutes on 2 idle cores, most of it training; add --no-short-forms for the labels-only runs)

The chain, each step skipped when its output exists (so an interrupted run resumes):
1. evaluation sets, from the product's own builders: CodiEsp dev diagnoses (es,
   `evalset.import_codiesp`), held-out terminology labels in pt, fr, it (WHO, exact precision) and en
   (ICD-10-CM inclusion terms; `heldout.heldout_label_items`), and clinician-style held-out items in
   every language (`heldout.clinician_heldout_items`: acronyms, short forms, DATASUS abbreviated
   descriptions, inclusion terms; Catalan listed as having no evaluation data), both for corpus codes
   that no training pair uses;
2. training pairs: `clinassay generate` with the terminology generator (ICD-10-CM titles and
   inclusion terms, WHO labels, and their clinician-style short forms: "hematuria" for "Hematuria,
   unspecified") over sampled codes that are not held out (CodiEsp is never used for training: its
   codes may appear among the sampled ones, its mentions never do);
3. `clinassay audit` with both evaluation sets as --eval-set (leaks are rejected), embeddings off to
   fit the CPU budget;
4. `clinassay train` (me5-small, frozen document side: the corpus index is the base model's);
5. `clinassay evaluate` for every system on every set; the two-stage model (`--rerank`) on CodiEsp,
   gated per language against me5-small zero-shot on the held-out labels; every table is printed in
   both views (every occurrence; distinct (mention, code) pairs).

The corpus: every billable code (74,719 with labels), English titles + Spanish WHO labels, 84,135
distinct label texts, encoded once per model and cached (3 minutes on 2 cores with native bf16,
bench/encode_speed.py). The reranker: 8 hard negatives per group, 2 of them the gold code's siblings,
then stage 1's shortlist; its fusion weight is fitted on clinician-style items of the dev split's
codes (retrieval.train.fusion_items), never on CodiEsp.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODIESP_DEV = ROOT.parent / "shared" / "data" / "codiesp" / "dev"
DATASUS = ROOT.parent / "shared" / "data" / "terminology" / "pt_datasus"
HELDOUT_LANGUAGES = ("pt", "fr", "it", "en")

CONFIG = """\
[retrieval]
base_model = "me5-small"
seed = 13

[retrieval.corpus]
languages = ["en", "es"]

[retrieval.biencoder]
max_steps = {max_steps}
batch_size = 32
eval_steps = {eval_steps}
max_dev_queries = 200
early_stopping_patience = 2
freeze_embeddings = true
document_side = "frozen"

[retrieval.reranker]
max_steps = {rerank_steps}
batch_size = 8
learning_rate = {rerank_lr}
negatives = {rerank_negatives}
candidates_top_k = 20
max_groups = {max_groups}
sibling_negatives = {sibling_negatives}

[generation]
languages = ["es", "pt", "fr", "it", "en"]
codes_file = "{codes_file}"
tasks = ["positive"]
progress = false

[[generation.models]]
name = "terminology"
model = "terminology"
sources = ["icd10cm", "who"]
short_forms = {short_forms}
"""


def clinassay(*args: str, log: Path) -> int:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    started = time.time()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ clinassay {' '.join(args)}\n")
        handle.flush()
        code = subprocess.call([sys.executable, "-m", "clinassay", *args], stdout=handle, stderr=subprocess.STDOUT, env=env)
    print(f"  clinassay {args[0]} -> exit {code} in {time.time() - started:.0f} s", flush=True)
    return code


def build_sets(work: Path, *, heldout_codes: int, train_codes: int, seed: int) -> None:
    """The evaluation sets, from the product's own builders: CodiEsp dev (`evalset.import_codiesp`),
    held-out terminology labels (`heldout.heldout_label_items`) and clinician-style held-out items
    (`heldout.clinician_heldout_items`: acronyms, short forms, DATASUS abbreviations, inclusion terms),
    both over corpus codes that no training pair uses."""
    from clinassay.retrieval.corpus import select_codes
    from clinassay.retrieval.evalset import import_codiesp, write_eval_set
    from clinassay.retrieval.heldout import clinician_heldout_items, heldout_label_items
    from clinassay.terminology import load_terminology

    term = load_terminology()
    if not (work / "codiesp_dev.tsv").is_file():
        items, stats = import_codiesp(CODIESP_DEV, term)
        write_eval_set(items, work / "codiesp_dev.tsv")
        (work / "codiesp_import.json").write_text(json.dumps(stats, indent=2))
    if (work / "heldout.tsv").is_file() and (work / "clinician.tsv").is_file() and (work / "codes.txt").is_file():
        return
    corpus = select_codes(term, billable_only=True)
    labelled = [c for c in corpus if any(_exact(term, c, lang) for lang in ("es", "pt", "fr", "it"))]
    rng = random.Random(seed)
    rng.shuffle(labelled)
    # the generation plan: the first `heldout_codes` shuffled labelled codes are kept out of it (so
    # every language keeps held-out labels), the next `train_codes` are trained on, every other corpus
    # code is held out too
    # code is held out too. Italian has 405 WHO labels offline: codes carrying one are never trained on,
    # or too few would be left to test Italian on.
    italian = {c for c in labelled if _exact(term, c, "it")}
    rest = [c for c in labelled if c not in italian]
    train = rest[heldout_codes : heldout_codes + train_codes]
    (work / "codes.txt").write_text("\n".join(train) + "\n")
    languages = ["es", "ca", *HELDOUT_LANGUAGES]
    labels = heldout_label_items(term, codes=corpus, languages=list(HELDOUT_LANGUAGES), per_language=300,
                                 exclude=train, seed=seed)
    write_eval_set(labels, work / "heldout.tsv")
    clinician, stats = clinician_heldout_items(term, codes=corpus, languages=languages, exclude=train, seed=seed,
                                               datasus_dir=DATASUS if DATASUS.is_dir() else None)
    write_eval_set(clinician, work / "clinician.tsv")
    (work / "clinician_stats.json").write_text(json.dumps(stats, indent=2))


def _exact(term, code: str, language: str) -> str | None:
    label = term.label(code, language)
    return label.text if label is not None and label.precision == "exact" else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/clinassay-quality"))
    parser.add_argument("--train-codes", type=int, default=6000)
    parser.add_argument("--heldout-codes", type=int, default=1500,
                        help="labelled codes kept out of the generation plan (the held-out sets draw on them)")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--eval-steps", type=int, default=100)
    parser.add_argument("--rerank-steps", type=int, default=400)
    parser.add_argument("--max-groups", type=int, default=3200)
    parser.add_argument("--rerank-negatives", type=int, default=8, help="hard negatives per reranker group")
    parser.add_argument("--sibling-negatives", type=int, default=2, help="of them, the gold code's siblings")
    parser.add_argument("--rerank-lr", type=float, default=4e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-short-forms", action="store_true",
                        help="labels only (the first runs): no clinician-style short forms of the labels")
    parser.add_argument("--skip-training", action="store_true", help="evaluate the zero-shot baselines only")
    parser.add_argument("--until", choices=["audit", "train", "evaluate"], default="evaluate")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    config = work / "config.toml"
    config.write_text(CONFIG.format(
        max_steps=args.max_steps, eval_steps=args.eval_steps,
        rerank_steps=args.rerank_steps, max_groups=args.max_groups, rerank_lr=args.rerank_lr, rerank_negatives=args.rerank_negatives,
        sibling_negatives=args.sibling_negatives, codes_file=work / "codes.txt",
        short_forms="false" if args.no_short_forms else "true",
    ))
    print("1. evaluation sets and training codes", flush=True)
    build_sets(work, heldout_codes=args.heldout_codes, train_codes=args.train_codes, seed=args.seed)
    sets = {"codiesp": work / "codiesp_dev.tsv", "heldout": work / "heldout.tsv", "clinician": work / "clinician.tsv"}
    if not args.skip_training:
        if not (work / "pairs.jsonl").is_file():
            print("2. generate (terminology generator)", flush=True)
            clinassay("generate", "--config", str(config), "--out", str(work / "pairs.jsonl"), "--no-progress", log=log)
        merged = work / "all_eval.tsv"
        if not merged.is_file():  # both evaluation sets in one file for the leakage check
            lines = sets["codiesp"].read_text().splitlines()
            lines += [line for name in ("heldout", "clinician") for line in sets[name].read_text().splitlines()[1:]]
            merged.write_text("\n".join(lines) + "\n")
        audit_args = ["--config", str(config), "--eval-set", str(merged), "--no-embeddings", "--no-report"]
        if not (work / "audit_raw" / "manifest.json").is_file():
            print("3. audit", flush=True)
            clinassay("audit", str(work / "pairs.jsonl"), "--out", str(work / "audit_raw"), *audit_args, log=log)
        raw_manifest = json.loads((work / "audit_raw" / "manifest.json").read_text())
        if raw_manifest["verdict"] != "pass" and not (work / "audit" / "manifest.json").is_file():
            refused = clinassay("train", str(work / "audit_raw"), "--out", str(work / "refused"), "--config", str(config), log=log)
            print(f"   training on the failed audit: exit {refused} (2 = refused, as it must be)")
            leaked = set()
            for line in (work / "audit_raw" / "rejected.jsonl").read_text().splitlines():
                record = json.loads(line)
                if any(r.get("check") == "leakage" for r in record.get("reasons", [])):
                    leaked.add(record["id"])
            kept = [l for l in (work / "pairs.jsonl").read_text().splitlines() if json.loads(l).get("id") not in leaked]
            (work / "pairs_clean.jsonl").write_text("\n".join(kept) + "\n")
            print(f"   decontaminated: dropped {len(leaked)} pairs that leak evaluation mentions; auditing again")
            clinassay("audit", str(work / "pairs_clean.jsonl"), "--out", str(work / "audit"), *audit_args, log=log)
        elif raw_manifest["verdict"] == "pass" and not (work / "audit").exists():
            (work / "audit").symlink_to(work / "audit_raw")
        if args.until == "audit":
            return 0
        if not (work / "model" / "model_card.json").is_file():
            print("4. train", flush=True)
            code = clinassay("train", str(work / "audit"), "--out", str(work / "model"), "--config", str(config), log=log)
            if code:
                print(f"training refused or failed (exit {code}); see {log}")
                return code
    if args.until == "train":
        return 0
    print("5. evaluate", flush=True)
    systems = ["bm25", "minilm-en", "me5-small"] + ([] if args.skip_training else [str(work / "model")])
    for system in systems:
        name = Path(system).name
        for set_name, path in sets.items():
            out = work / "eval" / f"{name}-{set_name}"
            if not (out / "metrics.json").is_file():
                clinassay("evaluate", "--model", system, "--eval-set", str(path), "--out", str(out), "--config", str(config), log=log)
    if not args.skip_training:
        # the two-stage model: stage 1 then the reranker over its top 20, on the whole CodiEsp dev set,
        # and gated per language against me5-small zero-shot on the held-out labels
        out = work / "eval" / "model-codiesp-rerank"
        if not (out / "metrics.json").is_file():
            clinassay("evaluate", "--model", str(work / "model"), "--eval-set", str(sets["codiesp"]), "--out", str(out),
                      "--config", str(config), "--rerank", log=log)
        gate_out = work / "eval" / "model-heldout-gated"
        if not (gate_out / "metrics.json").is_file():
            clinassay("evaluate", "--model", str(work / "model"), "--eval-set", str(sets["heldout"]), "--out", str(gate_out),
                      "--config", str(config), "--rerank", "--baseline", str(work / "eval" / "me5-small-heldout" / "metrics.json"),
                      log=log)
    print_table(work)
    return 0


def _cell(path: Path, stage: str, language: str, view: str = "occurrence") -> str:
    from clinassay.retrieval.metrics import view_stages
    from clinassay.retrieval.metrics_file import load_metrics

    if not path.is_file():
        return "   -  /   - "
    data = load_metrics(path)
    block = view_stages(data, view).get(stage)
    if block is None:
        return "   -  /   - "
    s = block["overall"] if language == "overall" else block["languages"].get(language)
    if not s:
        return "   -  /   - "
    return f"{s['mrr@10']:.3f} / {s['r@5']:.3f}"


def print_table(work: Path) -> None:
    from clinassay.retrieval.metrics_file import load_metrics

    ev = work / "eval"
    rows = [("bm25", "bm25", "biencoder", "heldout"), ("minilm-en (zero-shot)", "minilm-en", "biencoder", "heldout"),
            ("me5-small (zero-shot)", "me5-small", "biencoder", "heldout"),
            ("clinassay stage 1", "model", "biencoder", "heldout"),
            ("clinassay stage 1+2", "model", "reranker", "heldout-gated")]
    for view in ("occurrence", "distinct"):
        print(f"\nMRR@10 / R@5, {view} view (corpus: every billable code, English titles + Spanish WHO "
              "labels)")
        header = f"{'system':<22} {'CodiEsp dev (es)':>16} " + " ".join(f"{'held-out ' + l:>15}" for l in HELDOUT_LANGUAGES)
        print(header)
        for label, name, stage, heldout in rows:
            codiesp = f"{name}-codiesp" + ("-rerank" if stage == "reranker" else "")
            cells = [_cell(ev / codiesp / "metrics.json", stage, "es", view)]
            cells += [_cell(ev / f"{name}-{heldout}" / "metrics.json", stage, lang, view) for lang in HELDOUT_LANGUAGES]
            print(f"{label:<22} {cells[0]:>16} " + " ".join(f"{c:>15}" for c in cells[1:]))
    print("\nMRR@10 / R@5 on clinician-style held-out items (occurrence view)")
    print(f"{'system':<22} " + " ".join(f"{l:>15}" for l in ("es", *HELDOUT_LANGUAGES)))
    for label, name, stage, _ in rows[:4]:
        cells = [_cell(ev / f"{name}-clinician" / "metrics.json", stage, lang) for lang in ("es", *HELDOUT_LANGUAGES)]
        print(f"{label:<22} " + " ".join(f"{c:>15}" for c in cells))
    stats_file = work / "clinician_stats.json"
    if stats_file.is_file():
        missing = json.loads(stats_file.read_text()).get("no_evaluation_data") or []
        for language in missing:
            print(f"{language:<22} no evaluation data")
    gated = ev / "model-heldout-gated" / "metrics.json"
    if gated.is_file() and (comparison := load_metrics(gated).comparison) is not None:
        print(f"\nheld-out gate vs me5-small zero-shot (tolerance {comparison.tolerance}): "
              f"{'PASS' if comparison.passed else 'FAIL ' + ', '.join(comparison.regressing_languages)}")
    card = work / "model" / "model_card.json"
    if card.is_file():
        c = json.loads(card.read_text())
        print(f"training data: {c['data']['pairs']} audited pairs {c['data']['languages']}; "
              f"stage 1 {c['evaluation']['biencoder'].get('global_step')} steps, "
              f"stage 2 {((c['evaluation'].get('reranker') or {}).get('global_step'))} steps; {c['training_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())

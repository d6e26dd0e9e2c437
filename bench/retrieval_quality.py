"""Retrieval quality of the CodiEsp recipe, measured on real data without leakage: the zero-shot
baselines (bm25, minilm-en, me5-small) against the two-stage model that `clinassay run --config
examples/codiesp.toml` trains.

    CLINASSAY_THREADS=2 python bench/retrieval_quality.py --work /tmp/clinassay-quality

(about an hour on 2 cores with native bf16: the run took 53 minutes, 41 of them training). Every step is a clinassay command,
skipped when its output exists (so an interrupted bench resumes); nothing here builds data or trains:

1. the example's own evaluation set and reference (`clinassay data import-codiesp`, CodiEsp dev and
   train, as examples/codiesp.toml's header says), and held-out sets from the product's held-out
   builder over corpus codes the recipe's generation plan never touches (`clinassay data heldout-labels`:
   WHO labels in es, pt, fr, it and ICD-10-CM inclusion terms in en; `--style clinician`: acronyms, short
   forms, DATASUS abbreviated descriptions, inclusion terms, Catalan listed as "no evaluation data");
2. `clinassay run --config examples/codiesp.toml --out WORK/run`: generate (terminology generator) ->
   audit (CodiEsp dev as the leakage reference) -> train (both stages) -> evaluate on CodiEsp dev with
   the reranker, gated against me5-small zero-shot -> report;
3. `clinassay evaluate` for every system on the held-out sets (the trained model with `--rerank`, so
   both stages are scored, and gated per language against me5-small zero-shot on the held-out labels)
   and for the baselines on CodiEsp dev; every table is printed in both views (every occurrence;
   distinct (mention, code) pairs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "examples" / "codiesp.toml"
CODIESP = ROOT.parent / "shared" / "data" / "codiesp"
DATASUS = ROOT.parent / "shared" / "data" / "terminology" / "pt_datasus"
HELDOUT_LANGUAGES = ("es", "pt", "fr", "it", "en")
BASELINES = ("bm25", "minilm-en", "me5-small")


def clinassay(*args: str, log: Path) -> int:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    started = time.time()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ clinassay {' '.join(args)}\n")
        handle.flush()
        code = subprocess.call([sys.executable, "-m", "clinassay", *args], stdout=handle, stderr=subprocess.STDOUT,
                               env=env, cwd=ROOT)
    print(f"  clinassay {' '.join(args[:2])} -> exit {code} in {time.time() - started:.0f} s", flush=True)
    return code


def recipe_paths() -> dict[str, Path]:
    """The evaluation set and reference the recipe names (its paths are relative to the config file)."""
    from clinassay.config import load_config

    run = load_config(RECIPE).run
    return {"codiesp": Path(run.eval_set), "reference": Path(run.reference)}


def build_sets(work: Path, *, per_language: int, log: Path) -> dict[str, Path]:
    paths = recipe_paths()
    for split, target in (("dev", paths["codiesp"]), ("train", paths["reference"])):
        if not target.is_file():
            clinassay("data", "import-codiesp", str(CODIESP / split), "--out", str(target), log=log)
    sets = {"codiesp": paths["codiesp"], "heldout": work / "heldout.tsv", "clinician": work / "clinician.tsv"}
    for style in ("labels", "clinician"):
        target = sets["heldout" if style == "labels" else "clinician"]
        if not target.is_file():
            extra = ["--datasus", str(DATASUS)] if style == "clinician" and DATASUS.is_dir() else []
            clinassay("data", "heldout-labels", "--config", str(RECIPE), "--style", style, "--per-language",
                      str(per_language), "--out", str(target), *extra, log=log)
    return sets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/clinassay-quality"))
    parser.add_argument("--per-language", type=int, default=300, help="held-out items per language")
    parser.add_argument("--skip-training", action="store_true", help="evaluate the zero-shot baselines only")
    args = parser.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    print("1. evaluation sets (CodiEsp dev, held-out labels and clinician-style items)", flush=True)
    sets = build_sets(work, per_language=args.per_language, log=log)
    model = work / "run" / "train" / "model"
    if not args.skip_training:
        print(f"2. clinassay run --config {RECIPE.relative_to(ROOT)}", flush=True)
        code = clinassay("run", "--config", str(RECIPE), "--out", str(work / "run"), log=log)
        if code:
            print(f"the recipe's run stopped (exit {code}); see {log}")
            return code
    print("3. evaluate", flush=True)
    ev = work / "eval"
    for system in BASELINES:
        for set_name, path in sets.items():
            out = ev / f"{system}-{set_name}"
            if not (out / "metrics.json").is_file():
                clinassay("evaluate", "--model", system, "--eval-set", str(path), "--out", str(out), "--config",
                          str(RECIPE), log=log)
    if not args.skip_training:
        for set_name in ("heldout", "clinician"):
            out = ev / f"model-{set_name}"
            gate = (["--baseline", str(ev / f"me5-small-{set_name}" / "metrics.json")] if set_name == "heldout" else [])
            if not (out / "metrics.json").is_file():
                clinassay("evaluate", "--model", str(model), "--eval-set", str(sets[set_name]), "--out", str(out),
                          "--config", str(RECIPE), "--rerank", *gate, log=log)
        candidate = ev / "model-codiesp"
        if not candidate.exists():
            candidate.parent.mkdir(parents=True, exist_ok=True)
            candidate.symlink_to(work / "run" / "evaluate" / "candidate")
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
    rows = [("bm25", "bm25", "biencoder"), ("minilm-en (zero-shot)", "minilm-en", "biencoder"),
            ("me5-small (zero-shot)", "me5-small", "biencoder"), ("clinassay stage 1", "model", "biencoder"),
            ("clinassay stage 1+2", "model", "reranker")]
    for view in ("occurrence", "distinct"):
        print(f"\nMRR@10 / R@5, {view} view (corpus: every billable code, English titles + Spanish WHO "
              "labels)")
        header = f"{'system':<22} {'CodiEsp dev (es)':>16} " + " ".join(f"{'held-out ' + l:>15}" for l in HELDOUT_LANGUAGES)
        print(header)
        for label, name, stage in rows:
            cells = [_cell(ev / f"{name}-codiesp" / "metrics.json", stage, "es", view)]
            cells += [_cell(ev / f"{name}-heldout" / "metrics.json", stage, lang, view) for lang in HELDOUT_LANGUAGES]
            print(f"{label:<22} {cells[0]:>16} " + " ".join(f"{c:>15}" for c in cells[1:]))
    print("\nMRR@10 / R@5 on clinician-style held-out items (occurrence view)")
    print(f"{'system':<22} " + " ".join(f"{l:>15}" for l in HELDOUT_LANGUAGES))
    for label, name, stage in rows:
        cells = [_cell(ev / f"{name}-clinician" / "metrics.json", stage, lang) for lang in HELDOUT_LANGUAGES]
        print(f"{label:<22} " + " ".join(f"{c:>15}" for c in cells))
    print(f"{'ca':<22} no evaluation data (no Catalan label table offline)")
    gated = ev / "model-heldout" / "metrics.json"
    if gated.is_file() and (comparison := load_metrics(gated).comparison) is not None:
        print(f"\nheld-out gate vs me5-small zero-shot (tolerance {comparison.tolerance}): "
              f"{'PASS' if comparison.passed else 'FAIL ' + ', '.join(comparison.regressing_languages)}")
    card = work / "run" / "train" / "model" / "model_card.json"
    if card.is_file():
        c = json.loads(card.read_text())
        print(f"training data: {c['data']['pairs']} audited pairs {c['data']['languages']}; "
              f"stage 1 {c['evaluation']['biencoder'].get('global_step')} steps, "
              f"stage 2 {((c['evaluation'].get('reranker') or {}).get('global_step'))} steps; {c['training_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())

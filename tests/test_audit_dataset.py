"""Dataset-level figures: reject-rate outliers per generator x language, the generator fingerprint
(cross-validated char n-grams + logistic regression), coverage, and Evidently drift against a reference."""

from __future__ import annotations

import json
from pathlib import Path

from clinassay.audit import AuditConfig, Auditor, audit_pairs, run_audit
from clinassay.audit.bias import reject_outliers
from clinassay.audit.config import BiasConfig
from clinassay.audit.references import LabelledMention

DISEASES = ["neumonía", "infección urinaria", "dolor torácico", "cefalea", "anemia", "fiebre", "lumbalgia",
            "hipertensión arterial", "insuficiencia cardiaca", "asma bronquial", "gastritis", "otitis media"]
CODES = ["J18.9", "N39.0", "R07.9", "R51.9", "D64.9", "R50.9", "M54.50", "I10", "I50.9", "J45.909", "K29.70", "H66.90"]


def _pairs() -> list[dict]:
    out = []
    for i in range(36):
        d, c = DISEASES[i % 12], CODES[i % 12]
        out.append({"mention": f"paciente refiere {d} desde hace {i + 2} días", "code": c, "language": "es", "model": "verbose-llm"})
        out.append({"mention": f"{d.upper()} ({i + 2}d)", "code": c, "language": "es", "model": "terse-llm"})
    return out


def test_fingerprint_tells_generators_and_synthetic_from_real(terminology) -> None:
    auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology)
    list(audit_pairs(_pairs(), auditor=auditor))
    reference = [LabelledMention(m, "J18.9", "es", n) for n, m in enumerate(
        ["NAC", "ITU baja", "dolor precordial", "cefalea holocraneal", "anemia ferropénica", "febrícula", "lumbociática",
         "HTA", "ICC", "crisis asmática", "gastritis crónica", "OMA"] * 3, start=2)]
    summary = auditor.summarize(reference=None).model_dump(mode="json")
    fp = summary["bias"]["fingerprint"]["es"]["generators"]
    assert fp["macro_f1"] > 0.9 > fp["chance_macro_f1"] and fp["classes"] == {"terse-llm": 36, "verbose-llm": 36}
    assert set(fp["top_features"]) == {"terse-llm", "verbose-llm"}
    from clinassay.audit.bias import fingerprints

    real = fingerprints(auditor.tally.samples, {"es": [r.mention for r in reference]}, auditor.config.bias)
    assert real["es"]["synthetic_vs_real"]["roc_auc"] > 0.8
    coverage = {row["chapter"]: row for row in summary["coverage"]["chapters"]}
    assert coverage["10"]["planned"]["es"] == 2 * 3 * 2  # J18.9 and J45.909, 3 rounds, 2 generators
    assert summary["bias"]["coverage"]["es"]["share"] == 1.0
    assert summary["bias"]["coverage_per_generator"]["terse-llm"]["chapters_planned"] == len(
        {row["chapter"] for row in summary["coverage"]["chapters"]})


def test_reject_outliers_flags_the_cell_that_jumps_out() -> None:
    matrix = [{"language": "es", "generator": g, "reject_rate": r, "reasons": {"language": 3}}
              for g, r in (("a", 0.05), ("b", 0.06), ("c", 0.40))]
    outliers = reject_outliers(matrix, BiasConfig())
    assert [(o["generator"], o["main_reason"]) for o in outliers] == [("c", "language")]


def test_drift_report_per_language(tmp_path: Path, terminology) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in _pairs()), encoding="utf-8")
    reference = tmp_path / "reference.tsv"
    rows = [f"{m}\tJ18.9\tes" for m in ["NAC", "ITU baja", "dolor precordial", "cefalea", "anemia", "febrícula",
                                         "lumbociática", "HTA", "ICC", "crisis asmática"] * 4]
    reference.write_text("mention\tcode\tlanguage\n" + "\n".join(rows) + "\n", encoding="utf-8")
    config = AuditConfig.model_validate({"embeddings": False, "gate": {"max_drift_share": 0.5}})
    outcome = run_audit(pairs, tmp_path / "out", config=config, terminology=terminology, reference_path=reference)
    drift = outcome.summary.drift["es"]
    assert set(drift["features"]) == {"chars", "words", "unseen_word_share"}
    assert drift["drift_share"] > 0.5 and "chars" in drift["drifted_features"]
    assert outcome.summary.drift_reports == {"es": "drift_es.html"}
    html = (tmp_path / "out" / "drift_es.html").read_text(encoding="utf-8")
    assert "<html" in html.lower()
    failed = [r for r in outcome.summary.gate.failed if r.name == "drift_share"]
    assert failed and failed[0].scope == "language:es" and outcome.summary.verdict == "fail"

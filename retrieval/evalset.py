"""Evaluation sets: (mention, code, language) rows from a TSV with a header or from JSONL (read by the
audit's reader of the same format, so the audit's leakage check and the evaluation see the same rows),
and the importer that turns a CodiEsp split into one. Codes are normalised with the terminology; rows whose
code is not in ICD-10-CM are dropped and counted, never silently lost."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike

@dataclass(frozen=True)
class EvalItem:
    mention: str
    code: str
    language: str


def load_eval_set(path: Path | str, *, normalize=None) -> list[EvalItem]:
    """Read an evaluation set (the audit's reader of the format: audit/references.read_labelled);
    `normalize` (e.g. terminology.normalize_code) canonicalises codes and refuses malformed ones."""
    from clinassay.audit.references import read_labelled

    path = Path(path)
    if not path.is_file():
        raise ClinassayInputError(f"evaluation set not found: {path}")
    items = [EvalItem(mention=m.mention, code=m.code, language=m.language)
             for m in read_labelled(path, normalize_code=normalize, bad_code="refuse")]
    if not items:
        raise ClinassayInputError(f"evaluation set is empty: {path}")
    return items


def write_eval_set(items: list[EvalItem], path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        if path.suffix == ".jsonl":
            for item in items:
                handle.write(json.dumps({"mention": item.mention, "code": item.code, "language": item.language}, ensure_ascii=False) + "\n")
        else:
            handle.write("mention\tcode\tlanguage\n")
            for item in items:
                mention = item.mention.replace("\t", " ").replace("\n", " ")
                handle.write(f"{mention}\t{item.code}\t{item.language}\n")


def codiesp_rows(split_dir: Path | str, term: TerminologyLike, *, language: str = "es"):
    """DIAGNOSTICO rows of a CodiEsp split's `*X.tsv` as (document id, EvalItem), with counts of what was
    dropped (codes absent from ICD-10-CM, malformed codes) and why. The document is what a split by
    document (leave-one-document-out fitting) needs; `import_codiesp` drops it."""
    from clinassay.terminology.codes import MalformedCodeError  # the terminology owns code parsing

    split_dir = Path(split_dir)
    files = sorted(split_dir.glob("*X.tsv"))
    if not files:
        raise ClinassayInputError(f"no *X.tsv file in {split_dir} (expected a CodiEsp split such as codiesp/dev)")
    rows: list[tuple[str, EvalItem]] = []
    absent: Counter = Counter()
    malformed: Counter = Counter()
    procedures = 0
    for file in files:
        for line in file.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) < 4:
                continue
            label, raw_code, mention = parts[1].strip(), parts[2].strip(), parts[3].strip()
            if label != "DIAGNOSTICO":
                procedures += label == "PROCEDIMIENTO"
                continue
            try:
                found = term.find(raw_code)
            except MalformedCodeError:
                malformed[raw_code] += 1
                continue
            if found is None:
                absent[raw_code] += 1
                continue
            rows.append((parts[0].strip(), EvalItem(mention=mention, code=found.code, language=language)))
    stats = {
        "files": [f.name for f in files],
        "kept": len(rows),
        "dropped_absent_from_icd10cm": sum(absent.values()),
        "dropped_malformed": sum(malformed.values()),
        "procedures_skipped": procedures,
        "absent_codes": dict(absent.most_common(20)),
    }
    return rows, stats


def import_codiesp(split_dir: Path | str, term: TerminologyLike, *, language: str = "es") -> tuple[list[EvalItem], dict]:
    """DIAGNOSTICO rows of a CodiEsp split's `*X.tsv` as an evaluation set, with counts of what was
    dropped (codes absent from ICD-10-CM, malformed codes) and why."""
    rows, stats = codiesp_rows(split_dir, term, language=language)
    return [item for _, item in rows], stats

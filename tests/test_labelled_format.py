"""One reader of the (mention, code, language) format (audit/references.read_labelled): the audit's
evaluation set and reference and retrieval's evaluation set read the same rows the same way."""

from __future__ import annotations

import json

import pytest

from clinassay.audit.references import read_labelled
from clinassay.retrieval.evalset import load_eval_set
from clinassay.terminology import normalize_code
from clinassay.terminology.errors import ClinassayInputError


def test_both_readers_see_the_same_rows(tmp_path) -> None:
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("mention\tcode\tlanguage\n  infección urinaria \tn390\tES\nfiebre\tR50.9\tes\n", encoding="utf-8")
    jsonl = tmp_path / "eval.jsonl"
    jsonl.write_text("\n".join(json.dumps({"mention": m, "code": c, "language": lang})
                               for m, c, lang in [(" infección urinaria ", "n390", "ES"), ("fiebre", "R50.9", "es")]),
                     encoding="utf-8")
    for path in (tsv, jsonl):
        audit_rows = [(m.mention, m.code, m.language) for m in read_labelled(path, normalize_code=normalize_code)]
        retrieval_rows = [(i.mention, i.code, i.language) for i in load_eval_set(path, normalize=normalize_code)]
        assert audit_rows == retrieval_rows == [("infección urinaria", "N39.0", "es"), ("fiebre", "R50.9", "es")]


def test_a_malformed_code_is_kept_by_the_audit_and_refused_by_the_evaluation(tmp_path) -> None:
    """The audit still compares the mention's text (leakage); the evaluation needs a code to rank."""
    path = tmp_path / "eval.tsv"
    path.write_text("mention\tcode\tlanguage\nfiebre\tN3\tes\n", encoding="utf-8")
    assert read_labelled(path, normalize_code=normalize_code)[0].code == "N3"
    with pytest.raises(ClinassayInputError, match=r"eval.tsv:2: "):
        load_eval_set(path, normalize=normalize_code)


@pytest.mark.parametrize("content, message", [
    ("mention\tcode\tlanguage\n\tN39.0\tes\n", r":2: empty mention"),
    ("mention\tcode\nfiebre\tR50.9\n", r"missing language"),
    ('{"mention": "fiebre", "code": "R50.9", "language": "es"}\n[1, 2]\n', r":2: expected a JSON object"),
    ('{"mention": "fiebre", "code": "R50.9", "language": "es"}\n{oops\n', r":2: not valid JSON"),
])
def test_a_bad_row_names_its_file_and_line_in_both(tmp_path, content, message) -> None:
    path = tmp_path / "eval.tsv"
    path.write_text(content, encoding="utf-8")
    for read in (read_labelled, load_eval_set):
        with pytest.raises(ClinassayInputError, match=message):
            read(path)

"""A UTF-8 BOM (what spreadsheet exports write) at the start of an evaluation set or reference is not
part of its first column name."""

from __future__ import annotations

from clinassay.audit.references import read_labelled
from clinassay.retrieval.evalset import load_eval_set


def test_tsv_with_a_bom_reads_like_one_without(tmp_path) -> None:
    path = tmp_path / "eval.tsv"
    path.write_bytes("\ufeffmention\tcode\tlanguage\ninfección urinaria\tN39.0\tes\n".encode("utf-8"))
    assert [(m.mention, m.code) for m in read_labelled(path)] == [("infección urinaria", "N39.0")]
    assert [(i.mention, i.code) for i in load_eval_set(path)] == [("infección urinaria", "N39.0")]

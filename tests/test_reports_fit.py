"""The report shows the fit check as the audit decided it: a misfit in plain words with the code that
fits and its hierarchy distance, and the misfit-probability histogram per generator."""

from __future__ import annotations

import json

from clinassay.audit import AuditConfig
from clinassay.audit.auditor import run_audit
from clinassay.reports.build import build_report_context
from clinassay.reports.render import render_html


def test_report_explains_misfits_and_draws_a_histogram_per_generator(tmp_path) -> None:
    pairs = [
        {"mention": "infarto agudo de miocardio", "code": "J18.9", "language": "es", "model": "miscoder"},
        {"mention": "apendicitis aguda", "code": "N39.0", "language": "es", "model": "miscoder"},
        {"mention": "infección del tracto urinario", "code": "N39.0", "language": "es", "model": "careful"},
        {"mention": "neumonía", "code": "J18.9", "language": "es", "model": "careful"},
        # passes balanced, review (and strict) would reject it: accepted with a doubtful_fit warning the report names
        {"mention": "hemopericardio secundario a rotura de infarto", "code": "G25.83", "language": "es",
         "model": "miscoder"},
    ]
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    config = AuditConfig.model_validate({"embeddings": False, "gate": {"max_reject_rate": 1.0,
                                                                        "max_reject_rate_language": 1.0,
                                                                        "max_reject_rate_generator": 1.0}})
    run_audit(source, tmp_path / "out", config=config)
    context = build_report_context(tmp_path / "out", titles=lambda code: None)
    rows = {(f.generator, f.language): f for f in context.bias.fit}
    assert rows[("miscoder", "es")].misfit_share == 1.0 and rows[("careful", "es")].misfit_share == 0.0
    html = render_html(context)
    assert 'id="fit-histograms"' in html and "misfit probabilities of miscoder in es" in html
    assert "fits I21 Acute myocardial infarction (chapter 9) better; J18.9 is" in html
    assert "1 accepted with a doubtful_fit warning (the review operating point would reject them)" in html
    assert "review would reject it (other chapter): fits I2" in html


def test_the_fit_note_names_the_query_adapter_and_a_mismatch(tmp_path) -> None:
    """The summary says which query adapter mapped the mention vectors and whether the encoder's models
    could not be used with it; the report repeats it instead of deciding again."""
    from types import SimpleNamespace

    from clinassay.reports.audit_sections import fit_of

    def note(fit):
        return fit_of(SimpleNamespace(checks={"consistency": SimpleNamespace(info={"fit": fit})}))[1]

    fit = {"operating_point": "balanced", "variant": {"dense": "me5-small", "lexical": "lexical"},
           "query_adapter": "5e3e1d388a3620db", "adapter_mismatch": False}
    assert "query adapter 5e3e1d388a3620db" in note(fit) and "another query adapter" not in note(fit)
    mismatched = {**fit, "adapter_mismatch": True, "variant": {"dense": "lexical", "lexical": "lexical"}}
    assert "fitted with another query adapter, so the lexical models decided" in note(mismatched)

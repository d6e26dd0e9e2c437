"""The codes a "Code first" note cites (terminology/notes.py)."""

from clinassay.terminology.notes import cites, code_first_citations


def test_code_first_citations_cover_codes_prefixes_and_ranges(terminology):
    citations = code_first_citations(terminology, "F02.80")  # the notes sit on its category, F02
    assert ("G30", "G30") in citations and ("E00", "E03") in citations
    assert cites(citations, "G30.9") and cites(citations, "E01.8") and cites(citations, "G31.09")
    assert not cites(citations, "N41.0") and not cites(citations, "G31.1")


def test_a_code_without_notes_cites_nothing(terminology):
    assert code_first_citations(terminology, "N39.0") == ()

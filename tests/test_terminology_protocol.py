"""The terminology protocol the other packages are typed with: the real classification and the tests' fakes
both offer it, with its parameters (`make typecheck` also holds the real one to it under mypy --strict)."""

import inspect

import pytest

from clinassay.terminology import TerminologyLike

MEMBERS = sorted(name for name in vars(TerminologyLike) if not name.startswith("_"))
DATA_MEMBERS = sorted(name for name in MEMBERS if isinstance(vars(TerminologyLike)[name], property))


def _positional(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.kind is not p.KEYWORD_ONLY]


def test_the_protocol_is_what_the_packages_read():
    assert MEMBERS == ["billable_codes", "chapter_of", "chapters", "codes", "find", "get", "imports", "label",
                       "labels", "languages", "sex_restriction", "siblings", "source_digest"]
    assert DATA_MEMBERS == ["imports", "source_digest"]


@pytest.mark.parametrize("fixture", ["terminology", "tree_terminology", "labelled_terminology"])
def test_a_terminology_offers_the_protocol(fixture, request):
    term = request.getfixturevalue(fixture)
    assert isinstance(term, TerminologyLike)
    for name in MEMBERS:
        if name in DATA_MEMBERS:
            assert hasattr(term, name), name
        else:
            assert _positional(getattr(type(term), name)) == _positional(getattr(TerminologyLike, name)), name
    assert isinstance(term.source_digest, str) and all(hasattr(t, "labels") for t in term.imports)

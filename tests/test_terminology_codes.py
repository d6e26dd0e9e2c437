"""Code normalisation and the two input errors (no data needed)."""

import pytest

from clinassay.terminology import ClinassayInputError, MalformedCodeError, UnknownCodeError, normalize_code
from clinassay.terminology.codes import compact, dotted


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("n39.0", "N39.0"),
        ("N390", "N39.0"),
        (" N39.0 ", "N39.0"),
        ("n39", "N39"),
        ("N39.", "N39"),
        ("s2249xa", "S22.49XA"),
        ("S22.49XA", "S22.49XA"),
        ("qa0.0101", "QA0.0101"),
        ("c4a.0", "C4A.0"),
        ("n30-n39", "N30-N39"),
        ("14", "14"),
        ("01", "1"),
    ],
)
def test_normalize_code_spellings(raw: str, expected: str) -> None:
    assert normalize_code(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "N3", "39.0", "N3.90", "N39..0", "N39.0000000", "N39-0", "ÑA0", "N39.0!"])
def test_malformed_codes_raise(raw: str) -> None:
    with pytest.raises(MalformedCodeError) as info:
        normalize_code(raw)
    assert repr(raw) in str(info.value)


def test_non_string_is_malformed() -> None:
    with pytest.raises(MalformedCodeError, match="expected a string"):
        normalize_code(390)  # type: ignore[arg-type]


def test_errors_are_input_errors_and_distinct() -> None:
    assert issubclass(MalformedCodeError, ClinassayInputError)
    assert issubclass(UnknownCodeError, ClinassayInputError)
    assert not issubclass(MalformedCodeError, UnknownCodeError)
    err = UnknownCodeError("N39.7", ["N39.0", "N39.3"])
    assert err.suggestions == ["N39.0", "N39.3"]
    assert str(err) == "unknown ICD-10-CM code 'N39.7'; did you mean N39.0, N39.3?"


def test_compact_and_dotted_round_trip() -> None:
    assert compact("S22.49XA") == "S2249XA"
    assert dotted("S2249XA") == "S22.49XA"
    assert dotted("N39") == "N39"

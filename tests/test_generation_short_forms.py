"""Short forms: the bare concept a clinician writes for the default code, in every language."""

import pytest

from clinassay.generation.short_forms import short_form


@pytest.mark.parametrize(
    ("label", "language", "expected"),
    [
        ("Hematuria, unspecified", "en", "hematuria"),
        ("Urinary tract infection, site not specified", "en", "urinary tract infection"),
        ("Crohn's disease, unspecified, without complications", "en", "crohn's disease"),
        ("Malignant neoplasm of unspecified ovary", "en", "malignant neoplasm of ovary"),
        ("Infección de vías urinarias, sitio no especificado", "es", "infección de vías urinarias"),
        ("Anemia por deficiencia de hierro sin otra especificación", "es", "anemia por deficiencia de hierro"),
        ("Tumor maligno de las vías biliares, parte no especificada", "es", "tumor maligno de las vías biliares"),
        ("Transtorno da puberdade, não especificado", "pt", "transtorno da puberdade"),
        ("Péritonite, sans précision", "fr", "péritonite"),
        ("Tracoma non specificato", "it", "tracoma"),
        ("HIV disease, unspecified", "en", "HIV disease"),
    ],
)
def test_default_qualifiers_are_dropped(label, language, expected):
    assert short_form(label, language) == expected


@pytest.mark.parametrize(
    ("label", "language"),
    [
        ("Acute cystitis with hematuria", "en"),  # nothing to drop: the label is no new mention
        ("Essential (primary) hypertension", "en"),  # only a parenthetical: a near copy
        ("Unspecified", "en"),  # nothing left
        ("Hematuria, unspecified", "xx"),  # a language without rules
        ("", "es"),
    ],
)
def test_no_short_form_when_it_would_not_be_a_new_mention(label, language):
    assert short_form(label, language) is None


def test_terminology_generator_writes_short_forms_marked_as_such():
    from clinassay.generation.plan import terminology_mentions
    from clinassay.terminology import load_terminology

    term = load_terminology()
    plain = terminology_mentions(term, "R31.9", "en", sources=["icd10cm"])
    both = terminology_mentions(term, "R31.9", "en", sources=["icd10cm"], short_forms=True)
    assert ("hematuria", "icd10cm:short") in both
    assert set(plain) < set(both)

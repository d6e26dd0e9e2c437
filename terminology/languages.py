"""The six languages clinassay works in, defined once; every package imports them from here."""

from __future__ import annotations

from typing import Literal

Language = Literal["es", "ca", "pt", "fr", "it", "en"]
LANGUAGES: tuple[Language, ...] = ("es", "ca", "pt", "fr", "it", "en")
# Languages with a translated label table offline (WHO ICD-10); English has the ICD-10-CM titles and
# Catalan none, so a Catalan evaluation needs the user's own labels (`clinassay terminology import`).
LABELLED_LANGUAGES: tuple[Language, ...] = ("es", "fr", "pt", "it")
EVALUABLE_LANGUAGES: tuple[Language, ...] = ("es", "pt", "fr", "it", "en")

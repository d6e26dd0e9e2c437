"""Parse the ICD-10-CM FY2026 tabular XML into plain rows: every chapter, block, category and code,
including the codes formed with a 7th character.

The XML defines 7th characters once per category (`<sevenChrDef>`); they apply to every leaf below it,
padded with the placeholder X to six characters (`S22.49` + `A` -> `S22.49XA`). The CMS code list
shipped next to the XML says which of those combinations exist (a few are excluded by rules the XML
does not spell out), so an extended code is kept only when the code list has it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

from clinassay.terminology.codes import compact


class Row(NamedTuple):
    """One node, as stored in the cache (plain tuples pickle and load fast)."""

    kind: str
    title: str
    parent: str | None
    children: tuple[str, ...]
    billable: bool
    chapter: str
    inclusion_terms: tuple[str, ...]
    excludes1: tuple[str, ...]
    excludes2: tuple[str, ...]
    includes: tuple[str, ...]
    notes: tuple[str, ...]


_NOTE_PREFIX = {"codeFirst": "Code first: ", "useAdditionalCode": "Use additional code: ", "codeAlso": "Code also: ", "notes": ""}


def _text(element: ET.Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _notes(element: ET.Element, tag: str) -> tuple[str, ...]:
    return tuple(_text(note) for child in element.findall(tag) for note in child.findall("note") if _text(note))


def _instructions(element: ET.Element) -> tuple[str, ...]:
    out: list[str] = []
    for child in element:
        prefix = _NOTE_PREFIX.get(child.tag)
        if prefix is None:
            continue
        for note in child.findall("note"):
            text = _text(note)
            if text:
                out.append(prefix + text.lstrip(", ") if prefix else text)
    return tuple(out)


def _seven_chr_def(element: ET.Element) -> dict[str, str] | None:
    definition = element.find("sevenChrDef")
    if definition is None:
        return None
    out: dict[str, str] = {}
    last: str | None = None
    for child in definition:
        if child.tag == "extension":
            last = child.attrib["char"]
            out[last] = _text(child)
        elif child.tag == "note" and last is not None and _text(child):
            out[last] = f"{out[last]}/{_text(child)}"
    return out


def block_id(section_id: str) -> str:
    """Blocks are named by their range; a one-category block (`B99`) becomes `B99-B99` so it never
    collides with the category of the same name."""
    return section_id if "-" in section_id else f"{section_id}-{section_id}"


def read_code_list(path: Path) -> set[str]:
    """The CMS list of every valid node, dotless (`A000`, `S2249XA`, also chapters and blocks)."""
    return {line.split(" ")[0].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def parse_icd10cm(xml_path: Path, code_list_path: Path) -> dict[str, Row]:
    """All nodes keyed by canonical code, in classification order (chapters first within their tree)."""
    confirmed = read_code_list(code_list_path)
    root = ET.parse(xml_path).getroot()
    rows: dict[str, Row] = {}

    def add(code: str, kind: str, element: ET.Element | None, title: str, parent: str | None, chapter: str) -> None:
        if element is None:
            rows[code] = Row(kind, title, parent, (), True, chapter, (), (), (), (), ())
            return
        rows[code] = Row(
            kind,
            title,
            parent,
            (),
            True,
            chapter,
            _notes(element, "inclusionTerm"),
            _notes(element, "excludes1"),
            _notes(element, "excludes2"),
            _notes(element, "includes"),
            _instructions(element),
        )

    children: dict[str, list[str]] = {}

    def link(parent: str, child: str) -> None:
        children.setdefault(parent, []).append(child)

    def walk_diag(element: ET.Element, parent: str, chapter: str, seventh: dict[str, str] | None) -> None:
        code = _text(element.find("name"))
        title = _text(element.find("desc"))
        add(code, "category" if len(code) == 3 else "code", element, title, parent, chapter)
        link(parent, code)
        own = _seven_chr_def(element)
        seventh = own if own else seventh
        subdiags = element.findall("diag")
        for sub in subdiags:
            walk_diag(sub, code, chapter, seventh)
        if not subdiags and seventh:
            base = code if len(code) > 3 else f"{code}."
            base = base.ljust(7, "X")
            for char, meaning in seventh.items():
                extended = base + char
                if compact(extended) in confirmed:
                    add(extended, "code", None, f"{title}, {meaning}", code, chapter)
                    link(code, extended)

    for chapter_el in root.findall("chapter"):
        chapter = _text(chapter_el.find("name"))
        add(chapter, "chapter", chapter_el, _text(chapter_el.find("desc")), None, chapter)
        for section in chapter_el.findall("section"):
            block = block_id(section.attrib["id"])
            add(block, "block", section, _text(section.find("desc")), chapter, chapter)
            link(chapter, block)
            for diag in section.findall("diag"):
                walk_diag(diag, block, chapter, None)

    for code, kids in children.items():
        rows[code] = rows[code]._replace(children=tuple(kids), billable=False)
    for code, row in rows.items():
        if row.kind in ("chapter", "block"):
            rows[code] = row._replace(billable=False)
    return rows

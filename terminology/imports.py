"""Importers for label tables users bring: Brazil's DATASUS CID-10 CSVs and a plain TSV
(`code<TAB>language<TAB>label`, for CIE-10-ES, CIM-10, a Catalan table or anything else).

Every row is validated before anything is written; errors name the file, the line and what was wrong.
The table is then written in one atomic rename into the user's cache (`imports/<name>.json`), so a
failed import leaves the previous state untouched. Imported labels take precedence over WHO labels.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from clinassay.terminology.cache import imports_dir, write_atomic
from clinassay.terminology.codes import MalformedCodeError, compact, normalize_code
from clinassay.terminology.errors import ClinassayInputError

IMPORT_FORMAT = 1
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2})?$")
_WHO_SUBCATEGORY = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]?$")  # undivided categories are listed too (A09)
_WHO_CATEGORY = re.compile(r"^[A-Z][0-9]{2}$")
_RESTRSEXO = {"": None, "0": None, "5": None, "1": "male", "M": "male", "3": "female", "F": "female"}
MAX_REPORTED_ERRORS = 10


class ImportFileError(ClinassayInputError):
    """A file to import is wrong somewhere; the message lists each problem as `file:line: what`."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        total = total if total is not None else len(problems)
        more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__("nothing was imported:\n  " + "\n  ".join(problems) + more)


@dataclass
class ImportedTable:
    """What an import produced: labels per language keyed by dotless code, and sex restrictions."""

    name: str
    source: str
    kind: str
    files: list[str]
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    sex: dict[str, str] = field(default_factory=dict)
    imported_at: float = 0.0

    def to_json(self) -> bytes:
        payload = {"format": IMPORT_FORMAT, **self.__dict__}
        return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, data: dict) -> ImportedTable:
        data = {k: v for k, v in data.items() if k != "format"}
        return cls(**data)


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.count = 0

    def add(self, path: Path, line: int, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(f"{path}:{line}: {message}")

    def raise_if_any(self) -> None:
        if self.count:
            raise ImportFileError(self.items, self.count)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise ClinassayInputError(f"file not found: {path}")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            [f"{path}:{line}: not UTF-8 (byte {data[exc.start]:#x}); convert it first, e.g. iconv -f latin1 -t utf-8"]
        ) from exc


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ClinassayInputError(
            f"import name {name!r} must be lower-case letters, digits, '-' or '_' (at most 41 characters)"
        )
    return name


# --- DATASUS -------------------------------------------------------------------------------------

DATASUS_SUBCATEGORIES = "CID-10-SUBCATEGORIAS.csv"
DATASUS_CATEGORIES = "CID-10-CATEGORIAS.csv"


def _datasus_rows(path: Path, key: str, required: tuple[str, ...], problems: _Problems):
    """Yield (line number, row dict) for a `;`-separated DATASUS file, reporting structural problems."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text), delimiter=";", quoting=csv.QUOTE_NONE)
    try:
        header = [h.strip().upper() for h in next(reader)]
    except StopIteration:
        problems.add(path, 1, "the file is empty")
        return
    while header and header[-1] == "":
        header.pop()
    missing = [col for col in (key, *required) if col not in header]
    if missing:
        problems.add(path, 1, f"header lacks column(s) {', '.join(missing)} (found: {';'.join(header)})")
        return
    for line_no, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        while len(fields) > len(header) and fields[-1] == "":
            fields.pop()
        if len(fields) != len(header):
            problems.add(path, line_no, f"expected {len(header)} ';'-separated fields, found {len(fields)}")
            continue
        yield line_no, {h: v.strip() for h, v in zip(header, fields)}


def import_datasus(directory: Path | str, *, name: str = "datasus", cache_dir: Path | str | None = None) -> ImportedTable:
    """Import DATASUS CID-10 (`CID-10-SUBCATEGORIAS.csv`, `CID-10-CATEGORIAS.csv`) as Portuguese labels,
    keeping RESTRSEXO (1 or M: male only, 3 or F: female only)."""
    directory = Path(directory)
    _check_name(name)
    if not directory.is_dir():
        raise ClinassayInputError(f"DATASUS directory not found: {directory}")
    files = {DATASUS_SUBCATEGORIES: directory / DATASUS_SUBCATEGORIES, DATASUS_CATEGORIES: directory / DATASUS_CATEGORIES}
    absent = [n for n, p in files.items() if not p.is_file()]
    if absent:
        raise ClinassayInputError(f"{directory} lacks {', '.join(absent)} (expected the DATASUS CID-10 CSV files)")

    problems = _Problems()
    labels: dict[str, str] = {}
    sex: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for kind, path, key, pattern in (
        ("category", files[DATASUS_CATEGORIES], "CAT", _WHO_CATEGORY),
        ("subcategory", files[DATASUS_SUBCATEGORIES], "SUBCAT", _WHO_SUBCATEGORY),
    ):
        required = ("DESCRICAO", "RESTRSEXO") if kind == "subcategory" else ("DESCRICAO",)
        for line_no, row in _datasus_rows(path, key, required, problems):
            code = row[key].upper()
            if not pattern.match(code):
                like = "a 4-character subcategory (A000) or an undivided category (A09)" if kind == "subcategory" else "a 3-character category (A00)"
                problems.add(path, line_no, f"{key} {row[key]!r} is not {like}")
                continue
            if not row["DESCRICAO"]:
                problems.add(path, line_no, f"DESCRICAO is empty for {code}")
                continue
            if (kind, code) in seen:
                problems.add(path, line_no, f"{code} appears twice")
                continue
            seen.add((kind, code))
            labels[code] = row["DESCRICAO"]
            if kind == "subcategory":
                restriction = row["RESTRSEXO"].upper()
                if restriction not in _RESTRSEXO:
                    problems.add(path, line_no, f"RESTRSEXO {row['RESTRSEXO']!r} for {code} is not one of 1, 3 (or M, F), empty")
                    continue
                if _RESTRSEXO[restriction]:
                    sex[code] = _RESTRSEXO[restriction]
    problems.raise_if_any()
    if not labels:
        raise ImportFileError([f"{directory}: no rows found"])
    table = ImportedTable(name=name, source="datasus", kind="datasus", files=[str(p.resolve()) for p in files.values()],
                          labels={"pt": labels}, sex=sex, imported_at=time.time())
    _store(table, cache_dir)
    return table


# --- TSV -----------------------------------------------------------------------------------------


def import_tsv(path: Path | str, *, name: str | None = None, cache_dir: Path | str | None = None) -> ImportedTable:
    """Import `code<TAB>language<TAB>label` lines (a header line `code language label`, blank lines and
    `#` comments are skipped). Codes in any spelling (`n390`, `N39.0`); language `es`, `pt_BR`, ..."""
    path = Path(path)
    name = _check_name(name if name is not None else re.sub(r"[^a-z0-9_-]", "-", path.stem.lower()).strip("-_") or "tsv")
    text = _read_text(path)
    problems = _Problems()
    labels: dict[str, dict[str, str]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if line_no == 1 and [f.strip().lower() for f in fields] == ["code", "language", "label"]:
            continue
        if len(fields) != 3:
            problems.add(path, line_no, f"expected 3 tab-separated fields (code, language, label), found {len(fields)}")
            continue
        raw_code, language, label = (f.strip() for f in fields)
        try:
            code = compact(normalize_code(raw_code))
        except MalformedCodeError as exc:
            problems.add(path, line_no, str(exc))
            continue
        if "-" in code or code.isdigit():
            problems.add(path, line_no, f"{raw_code!r} is a block or chapter; only codes can be labelled")
            continue
        if not _LANGUAGE.match(language):
            problems.add(path, line_no, f"language {language!r} is not a language code like es, pt or pt_BR")
            continue
        language = language[:2].lower() if len(language) > 3 else language.lower()
        if not label:
            problems.add(path, line_no, f"the label for {raw_code} is empty")
            continue
        table = labels.setdefault(language, {})
        if code in table and table[code] != label:
            problems.add(path, line_no, f"{raw_code} ({language}) already has another label: {table[code]!r}")
            continue
        table[code] = label
    problems.raise_if_any()
    if not labels:
        raise ImportFileError([f"{path}: no labels found"])
    table = ImportedTable(name=name, source=f"import:{name}", kind="tsv", files=[str(path.resolve())],
                          labels=labels, imported_at=time.time())
    _store(table, cache_dir)
    return table


# --- storage -------------------------------------------------------------------------------------


def _store(table: ImportedTable, cache_dir: Path | str | None) -> Path:
    target = imports_dir(cache_dir) / f"{table.name}.json"
    write_atomic(target, table.to_json())
    from clinassay.terminology.terminology import forget_loaded  # imported tables change what load_terminology returns

    forget_loaded()
    return target


def imported_tables(cache_dir: Path | str | None = None) -> list[ImportedTable]:
    """Every stored import, most recent first (that order is their precedence)."""
    directory = imports_dir(cache_dir)
    if not directory.is_dir():
        return []
    tables = []
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            tables.append(ImportedTable.from_json(data))
        except (OSError, ValueError, TypeError) as exc:
            raise ClinassayInputError(f"the imported table {path} is unreadable ({exc}); import it again or delete it") from exc
    return sorted(tables, key=lambda t: t.imported_at, reverse=True)


def remove_import(name: str, *, cache_dir: Path | str | None = None) -> bool:
    path = imports_dir(cache_dir) / f"{_check_name(name)}.json"
    if not path.exists():
        return False
    path.unlink()
    from clinassay.terminology.terminology import forget_loaded

    forget_loaded()
    return True

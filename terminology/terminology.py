"""The terminology clinassay works in: ICD-10-CM FY2026 with labels in six languages.

`load_terminology()` parses the sources once, caches a compact form keyed by their hashes, and keeps
one instance per process; `Code` and `Label` objects are built on demand from plain tuples.
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import TYPE_CHECKING

from clinassay.terminology import sources
from clinassay.terminology.cache import file_digest, imports_dir, read_pickle, terminology_dir, write_pickle
from clinassay.terminology.codes import MalformedCodeError, UnknownCodeError, compact, normalize_code
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.records import LANGUAGES, Code, Label
from clinassay.terminology.sex import STRUCTURAL_SEX_RESTRICTIONS, Sex

if TYPE_CHECKING:
    from clinassay.terminology.config import TerminologyConfig
    from clinassay.terminology.imports import ImportedTable

CORE_FORMAT = "core-v1"
"""Bump when the parsed form changes, so old caches are rebuilt."""

WHO_LANGUAGES: tuple[str, ...] = tuple(sources.WHO_PO_FILES)

_KIND, _PARENT, _CHILDREN, _BILLABLE = 0, 2, 3, 4  # positions in a cached row (see icd10cm.Row)


class Terminology:
    """Read-only view over the parsed classification, WHO labels and imported tables.

    Labels attach to a code through the code itself (`exact`), else its 4-character subcategory, else
    its 3-character category; at equal precision an imported table (most recent first) wins over WHO.
    """

    def __init__(self, core: dict, imports: list[ImportedTable] | tuple = ()) -> None:
        self._rows: dict[str, tuple] = core["rows"]
        self._who: dict[str, tuple[dict[str, str], dict[str, str]]] = core["who"]
        self.who_repaired: dict[str, int] = core.get("repaired", {})
        self.source_digest: str = core.get("digest", "")
        self.imports = list(imports)
        self._codes: dict[str, Code] = {}
        self._billable: list[str] | None = None
        self._sorted_compact: list[tuple[str, str]] | None = None

    # --- lookup ----------------------------------------------------------------------------------

    def __contains__(self, code: object) -> bool:
        return self.find(code) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._rows)

    def find(self, code: str) -> Code | None:
        """The node for `code` in any spelling, or None (also for malformed strings)."""
        try:
            key = normalize_code(code)
        except MalformedCodeError:
            return None
        return self._code(key) if key in self._rows else None

    def get(self, code: str) -> Code:
        """The node for `code`; MalformedCodeError or UnknownCodeError (with suggestions) otherwise."""
        key = normalize_code(code)
        if key not in self._rows:
            raise UnknownCodeError(key, self.suggest(key))
        return self._code(key)

    def _code(self, key: str) -> Code:
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = Code(key, *self._rows[key])
        return code

    def suggest(self, code: str, *, limit: int = 5) -> list[str]:
        """Nearest existing codes: first those sharing the longest prefix, then by edit distance."""
        from rapidfuzz import fuzz, process

        target = compact(code)
        entries = self._compact_index()
        keys = [k for k, _ in entries]
        found: list[str] = []
        for size in range(len(target), 2, -1):
            prefix = target[:size]
            i = bisect.bisect_left(keys, prefix)
            near = []
            while i < len(keys) and keys[i].startswith(prefix) and len(near) < 50:
                near.append(entries[i][1])
                i += 1
            if near:
                near.sort(key=lambda c: (abs(len(compact(c)) - len(target)), c))
                found.extend(near[:limit])
                break
        if len(found) < limit:
            for _key, _score, index in process.extract(target, keys, scorer=fuzz.ratio, limit=limit * 2):
                if entries[index][1] not in found:
                    found.append(entries[index][1])
        return found[:limit]

    def _compact_index(self) -> list[tuple[str, str]]:
        if self._sorted_compact is None:
            self._sorted_compact = sorted(
                (compact(c), c) for c, row in self._rows.items() if row[_KIND] in ("category", "code")
            )
        return self._sorted_compact

    # --- hierarchy -------------------------------------------------------------------------------

    def ancestors(self, code: str) -> list[str]:
        """Parent, grandparent, ... up to the chapter."""
        out: list[str] = []
        parent = self.get(code).parent
        while parent is not None:
            out.append(parent)
            parent = self._rows[parent][_PARENT]
        return out

    def siblings(self, code: str) -> list[str]:
        """The other children of this code's parent (chapters: the other chapters)."""
        node = self.get(code)
        pool = self._rows[node.parent][_CHILDREN] if node.parent else [c.code for c in self.chapters()]
        return [c for c in pool if c != node.code]

    def chapters(self) -> list[Code]:
        return [self._code(c) for c, row in self._rows.items() if row[_KIND] == "chapter"]

    def chapter_of(self, code: str) -> str:
        return self.get(code).chapter

    def billable_codes(self) -> list[str]:
        """Every billable code (about 74,700), in classification order."""
        if self._billable is None:
            self._billable = [c for c, row in self._rows.items() if row[_BILLABLE]]
        return list(self._billable)

    def codes(self) -> list[str]:
        """Every node: chapters, blocks, categories and codes."""
        return list(self._rows)

    # --- labels ----------------------------------------------------------------------------------

    def languages(self) -> list[str]:
        """The standard six plus any language an imported table brought."""
        extra = sorted({lang for t in self.imports for lang in t.labels} - set(LANGUAGES))
        return [*LANGUAGES, *extra]

    def label(self, code: str, language: str) -> Label | None:
        """The best label of `code` in `language`, or None when no table has one (e.g. Catalan)."""
        return self._resolve(self.get(code).code, self.check_language(language))

    def _resolve(self, key: str, language: str) -> Label | None:
        """Label lookup for a canonical code and a checked language (the hot path of coverage)."""
        row = self._rows[key]
        if language == "en":
            return Label(row[1], "en", "exact", "icd10cm", key)
        who = self._who.get(language)
        if row[_KIND] in ("chapter", "block"):
            if who and key in who[1]:
                return Label(who[1][key], language, "exact", "who", key)
            return None
        tables = [(t.source, t.labels[language]) for t in self.imports if t.labels.get(language)]
        if who:
            tables.append(("who", who[0]))
        if not tables:
            return None
        for candidate, precision in _candidates(compact(key)):
            for source, table in tables:
                text = table.get(candidate)
                if text:
                    matched = candidate if len(candidate) == 3 else f"{candidate[:3]}.{candidate[3:]}"
                    return Label(text, language, precision, source, matched)
        return None

    def labels(self, code: str) -> dict[str, Label]:
        """Every language that has a label for `code`; `en` is always there."""
        out = {}
        for language in self.languages():
            found = self.label(code, language)
            if found is not None:
                out[language] = found
        return out

    def check_language(self, language: str) -> str:
        """The clinassay language code for `language` (`pt_BR` -> `pt`); an input error if unknown."""
        lang = language.strip().lower().replace("-", "_")
        lang = {"pt_br": "pt", "it_it": "it", "es_es": "es", "fr_fr": "fr", "ca_es": "ca"}.get(lang, lang)
        if lang not in LANGUAGES and not any(lang in t.labels for t in self.imports):
            raise ClinassayInputError(
                f"unknown language {language!r}: expected one of {', '.join(self.languages())} (or import a table for it)"
            )
        return lang

    def who_label_count(self, language: str) -> int:
        """How many WHO codes the installed GNU Health table translates (after cleaning)."""
        return len(self._who.get(self.check_language(language), ({}, {}))[0])

    # --- sex -------------------------------------------------------------------------------------

    def sex_restriction(self, code: str) -> Sex | None:
        """"male" or "female" when the code applies to one sex only: an imported table (DATASUS
        RESTRSEXO) first, else the classification's own structure (terminology.sex)."""
        node = self.get(code)
        if node.kind in ("category", "code"):
            key = compact(node.code)
            for table in self.imports:
                if not table.sex:
                    continue
                for candidate, _ in _candidates(key):
                    if candidate in table.sex:
                        return table.sex[candidate]  # type: ignore[return-value]
        for name in (node.code, *self.ancestors(node.code)):
            if name in STRUCTURAL_SEX_RESTRICTIONS:
                return STRUCTURAL_SEX_RESTRICTIONS[name][0]
        return None


def _candidates(key: str) -> list[tuple[str, str]]:
    """Where a label for the dotless code `key` may sit, closest first."""
    out = [(key, "exact")]
    if len(key) > 4:
        out.append((key[:4], "subcategory"))
    if len(key) > 3:
        out.append((key[:3], "category"))
    return out


# --- loading -----------------------------------------------------------------------------------------

_LOADED: dict[tuple, Terminology] = {}


def forget_loaded() -> None:
    """Drop the process-wide instances (after an import changed what they would contain)."""
    _LOADED.clear()


def _source_files() -> list[Path]:
    return [sources.icd10cm_xml(), sources.icd10cm_code_list(), *(sources.who_po_file(l) for l in WHO_LANGUAGES)]


def _build_core(files: list[Path], digest: str) -> dict:
    from clinassay.terminology.icd10cm import parse_icd10cm
    from clinassay.terminology.who import read_who_labels

    rows = parse_icd10cm(files[0], files[1])
    who, repaired = {}, {}
    for language, path in zip(WHO_LANGUAGES, files[2:]):
        codes, groups, fixed = read_who_labels(path, language)
        who[language] = (codes, groups)
        repaired[language] = fixed
    return {"format": CORE_FORMAT, "digest": digest, "rows": {c: tuple(r) for c, r in rows.items()}, "who": who, "repaired": repaired}


def load_core(directory: Path, *, rebuild: bool = False) -> dict:
    """The parsed ICD-10-CM + WHO tables: from the cache when the sources' hashes match, else parsed."""
    files = _source_files()
    here = Path(__file__).parent
    digest = file_digest(*files, here / "icd10cm.py", here / "who.py", salt=CORE_FORMAT)  # code changes rebuild too
    path = directory / f"core-{digest}.pickle"
    core = None if rebuild else read_pickle(path)
    if not isinstance(core, dict) or core.get("format") != CORE_FORMAT:
        core = _build_core(files, digest)
        try:
            write_pickle(path, core)
            for stale in directory.glob("core-*.pickle"):
                if stale != path:
                    stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only cache only costs speed
    return core


def _imports_signature(directory: Path) -> tuple:
    folder = imports_dir(directory)
    if not folder.is_dir():
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.glob("*.json")))


_CONFIGURED: list[TerminologyConfig] = []  # the [terminology] section of the config file this process loaded


def configure(config: TerminologyConfig) -> None:
    """Make `config` (the loaded file's [terminology] section) what a bare `load_terminology()` uses, so
    every command and library call sees the same tables (imported ones included) wherever they live."""
    _CONFIGURED[:] = [config]


def load_terminology(config: TerminologyConfig | None = None, *, cache_dir: Path | str | None = None, rebuild: bool = False) -> Terminology:
    """The process-wide terminology, imported tables included. Cold: ~2 s (parse, then cached); warm: fast."""
    from clinassay.terminology.imports import imported_tables

    config = config if config is not None else (_CONFIGURED[0] if _CONFIGURED else None)
    explicit = cache_dir if cache_dir is not None else (config.cache_dir if config is not None else None)
    directory = terminology_dir(explicit)
    key = (str(directory), os.environ.get("CLINASSAY_CACHE_DIR"), _imports_signature(directory))
    if not rebuild and key in _LOADED:
        return _LOADED[key]
    term = Terminology(load_core(directory, rebuild=rebuild), imported_tables(directory))
    for stale in [k for k in _LOADED if k[0] == key[0]]:  # same folder, older imports
        del _LOADED[stale]
    _LOADED[key] = term
    return term

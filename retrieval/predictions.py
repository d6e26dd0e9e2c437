"""predictions.jsonl: one row per evaluation item, where `clinassay evaluate` ranked its gold code.

`evaluate` (retrieval/evaluator.py) builds a `PredictionRow` per item, in the evaluation set's order: the
item (mention, gold code, language), the gold code's position in each stage's top 10 (0: not in it) and
that stage's top 5 codes; the reranker's two fields only when the run reranked. `write_metrics` writes the
rows beside metrics.json (`write_predictions`). The gate's paired test reads both runs' rows with
`load_predictions` and pairs them item by item; bench/ reads them for per-mention figures. A row with a key
this schema does not know, without one it needs, or whose rank and top codes disagree is refused with the
file, the line and the key (exit 2). Pure pydantic: the gate reads predictions.jsonl without loading torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clinassay.retrieval.metrics_file import Stage
from clinassay.terminology.errors import ClinassayInputError, invalid_artifact

PREDICTIONS_FILE = "predictions.jsonl"

Rank = Annotated[int, Field(ge=0, le=10)]  # the gold code's 1-based position in the stage's top 10; 0: not in it
TopCodes = Annotated[list[str], Field(max_length=5)]  # the stage's first five codes, best first


class PredictionRow(BaseModel):
    """One line of predictions.jsonl: an evaluation item and where each stage ranked its gold code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mention: str
    code: str  # the gold code
    language: str
    rank_biencoder: Rank = Field(description="the gold code's position in stage 1's top 10; 0: not in it")
    top_biencoder: TopCodes = Field(description="stage 1's first five codes, best first")
    rank_reranker: Rank | None = Field(
        default=None, description="as rank_biencoder, after reranking; absent: no --rerank"
    )
    top_reranker: TopCodes | None = Field(
        default=None, description="the reranker's first five codes; absent: no --rerank"
    )

    @property
    def item(self) -> tuple[str, str, str]:
        """The evaluation item the row ranks: (mention, gold code, language)."""
        return (self.mention, self.code, self.language)

    def rank(self, stage: Stage) -> int | None:
        """The gold code's rank in one stage (None: the run did not rerank)."""
        return self.rank_biencoder if stage == "biencoder" else self.rank_reranker

    @model_validator(mode="after")
    def _ranks_agree(self) -> PredictionRow:
        if (self.rank_reranker is None) != (self.top_reranker is None):
            raise ValueError("rank_reranker and top_reranker: a reranked row has both, another neither")
        for stage, rank, top in (
            ("biencoder", self.rank_biencoder, self.top_biencoder),
            ("reranker", self.rank_reranker, self.top_reranker),
        ):
            if rank is None or top is None:
                continue
            if 1 <= rank <= len(top) and top[rank - 1] != self.code:
                raise ValueError(
                    f"rank_{stage} is {rank}, but top_{stage}[{rank - 1}] is {top[rank - 1]!r}, not {self.code!r}"
                )
            if not 1 <= rank <= len(top) and self.code in top:
                raise ValueError(f"top_{stage} holds the gold code {self.code!r}, but rank_{stage} is {rank}")
        return self

    def to_json(self) -> str:
        """The row's line: the reranker's fields only when the run reranked."""
        return self.model_dump_json(exclude_none=True)


def predictions_path(path: Path | str) -> Path:
    """The predictions.jsonl beside a metrics.json, or in the evaluation output folder."""
    path = Path(path)
    return (path if path.is_dir() else path.parent) / PREDICTIONS_FILE


def write_predictions(out_dir: Path | str, rows: Iterable[PredictionRow]) -> Path:
    """predictions.jsonl in `out_dir`, one row per line in the order given."""
    path = Path(out_dir) / PREDICTIONS_FILE
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row.to_json() + "\n")
    return path


def load_predictions(metrics_path: Path | str) -> list[PredictionRow] | None:
    """The rows `clinassay evaluate` wrote beside a metrics.json (the file, or its folder), validated, or
    None when there are none; a bad row is exit 2 naming the file, the line and the key."""
    path = predictions_path(metrics_path)
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClinassayInputError(f"{path} cannot be read ({exc.strerror})") from exc
    rows: list[PredictionRow] = []
    first_line = 0  # the line of the first row: the others rerank as it does
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append(PredictionRow.model_validate_json(line))
        except ValidationError as exc:
            raise invalid_artifact(exc, f"{path}:{number}", "a clinassay predictions row") from exc
        first_line = first_line or number
        if (rows[-1].rank_reranker is None) != (rows[0].rank_reranker is None):
            reranked = "absent" if rows[-1].rank_reranker is None else "present"
            raise ClinassayInputError(
                f"{path}:{number}: rank_reranker: {reranked}, but not on line {first_line} (one run, one set of stages)"
            )
    return rows

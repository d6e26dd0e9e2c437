"""The unit the checks work on: a chunk of parsed pairs, with what the checks share (normalised text,
the resolved code, the mention embeddings computed once per chunk)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clinassay.audit.findings import Finding
from clinassay.audit.text import normalize_text


@dataclass
class Item:
    line: int
    record: dict[str, Any]
    mention: str
    raw_code: str
    language: str
    generator: str
    code: str | None = None  # normalised and known to the terminology; None when validity failed
    entry: Any = None  # the terminology's Code for `code`
    findings: list[Finding] = field(default_factory=list)
    norm: str = ""

    def __post_init__(self) -> None:
        self.norm = normalize_text(self.mention)

    @property
    def rejected(self) -> bool:
        return any(f.severity == "fail" for f in self.findings)


@dataclass
class Chunk:
    items: list[Item]
    embeddings: np.ndarray | None = None  # (len(items), d) float32, L2-normalised; None without an encoder
    embedded: np.ndarray | None = None  # which rows hold a vector (pairs rejected before encoding have none)

    def __len__(self) -> int:
        return len(self.items)

    def has_vector(self, i: int) -> bool:
        return self.embeddings is not None and (self.embedded is None or bool(self.embedded[i]))

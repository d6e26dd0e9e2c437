"""The `[reports]` section of the configuration file.

Caps keep a report of 100,000 pairs small enough to open: example tables show the first few rows per
check and point to `rejected.jsonl` for the rest.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field("clinassay report", min_length=1, max_length=200, description="heading of the page")
    examples_per_check: int = Field(20, ge=0, le=5_000, description="flagged examples shown per check")
    malformed_shown: int = Field(20, ge=0, le=5_000, description="malformed input lines listed")
    text_chars: int = Field(240, ge=20, le=20_000, description="longer mentions are cut in tables (full text in the row details)")
    drift_html: Literal["link", "embed", "omit"] = Field(
        "link", description="Evidently's drift pages: a link to the file beside the report, embedded in an iframe, or left out"
    )
    drift_embed_max_bytes: int = Field(
        6_000_000, ge=0, description="an Evidently page larger than this is linked even when embedding is asked for"
    )
    rate_scale_max: float = Field(
        0.5, gt=0, le=1, description="reject rate drawn in the darkest colour of the generator x language matrix"
    )
    regression_tolerance: float = Field(
        0.01, ge=0, le=1, description="retrieval deltas beyond this (absolute) are drawn as regressions or lifts"
    )

"""The fitted decision of the fit check: logistic models over the FitScore features and their thresholds
at named operating points (the share of correct clinician mentions they reject).

Two models, because the two errors look different: `category` separates right pairs from codes of
another category (same or other chapter); `member` separates them from a sibling in the same category.
Each exists in a dense+lexical form per encoder and a lexical-only form (no encoder, `--no-embeddings`,
or an encoder nobody fitted), and optionally in a form that adds a learned verifier's logits
(`ENCODER+VERIFIER`, `[audit.fit] verifier = true`), asked only for the pairs its base variant finds
suspicious, and in a form that adds the coded reference's near-match features (`ENCODER+reference`,
`lexical+reference`: `--reference`), fitted five-fold by document so a mention never finds itself. `bench/fit_operating_points.py` fits them on CodiEsp train (correct pairs
and seeded code swaps) and writes `fit_model.json`; thresholds are never guessed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from clinassay.audit.fit import FitScore

if TYPE_CHECKING:
    from clinassay.audit.query_adapter import QueryAdapter

OperatingPoint = Literal["lenient", "balanced", "strict", "review"]
"""From the fewest correct pairs rejected to the most; `review` is meant for `warn_from`: what a reviewer should see."""
MODEL_PATH = Path(__file__).with_name("fit_model.json")
LEXICAL = "lexical"
REFERENCE = "reference"


class LogisticModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def probability(self, score: FitScore) -> float:
        x = (score.features(self.features) - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(1.0 / (1.0 + np.exp(-(x @ np.asarray(self.coef) + self.intercept))))


class FittedPoint(BaseModel):
    """Thresholds on both models' probabilities, and what they did on the data they were fitted on."""

    model_config = ConfigDict(extra="forbid")

    category: float
    member: float
    false_reject_target: float
    fitted: dict[str, float]  # share rejected per kind on the fitting data


class VerifierGate(BaseModel):
    """A variant that asks the learned verifier (retrieval/verifier.py) does so only for pairs that the
    `base` variant finds suspicious: base probabilities at or above these thresholds (chosen on the
    fitting data so that the audit keeps its speed); the others pass without a model-based finding."""

    model_config = ConfigDict(extra="forbid")

    verifier: str  # the verifier's name
    base: str  # the variant whose probabilities gate the verifier
    category: float
    member: float
    asked: dict[str, float]  # share of each kind sent to the verifier on the fitting data


class FitVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: LogisticModel
    member: LogisticModel
    operating_points: dict[OperatingPoint, FittedPoint]
    verifier: VerifierGate | None = None
    # digest of the query adapter (audit/query_adapter.py) whose vectors the dense features were fitted on
    query_adapter: str | None = None


class FitModels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    fitted_on: str
    command: str
    variants: dict[str, FitVariant]  # encoder name -> variant; "lexical" for no encoder

    def variant(self, encoder_name: str | None, verifier_name: str | None = None) -> tuple[str, FitVariant]:
        """The encoder's own variant (with the verifier's when one is given and was fitted), else the
        lexical one (an unfitted encoder's cosines mean nothing here)."""
        if encoder_name and verifier_name and verifier_key(encoder_name, verifier_name) in self.variants:
            key = verifier_key(encoder_name, verifier_name)
            return key, self.variants[key]
        if encoder_name and encoder_name in self.variants:
            return encoder_name, self.variants[encoder_name]
        return LEXICAL, self.variants[LEXICAL]


def query_adapter_for(encoder_name: str | None, models: FitModels | None = None,
                      directory: Path | None = None) -> "QueryAdapter | None":
    """The query adapter the encoder's fitted variant was fitted with, when it ships; None when the
    variant used raw vectors (or there is no variant, or its adapter file is missing)."""
    from clinassay.audit.query_adapter import ADAPTER_DIR, load_query_adapter

    models = models or load_fit_models()
    variant = models.variants.get(encoder_name or "")
    if variant is None or variant.query_adapter is None:
        return None
    adapter = load_query_adapter(encoder_name, directory or ADAPTER_DIR)
    return adapter if adapter is not None and adapter.digest == variant.query_adapter else None


def reference_key(base_name: str) -> str:
    return f"{base_name}+{REFERENCE}"


def verifier_key(encoder_name: str, verifier_name: str) -> str:
    return f"{encoder_name}+{verifier_name}"


@lru_cache(maxsize=4)
def load_fit_models(path: Path = MODEL_PATH) -> FitModels:
    return FitModels.model_validate_json(path.read_text(encoding="utf-8"))


def save_fit_models(models: FitModels, path: Path = MODEL_PATH) -> None:
    path.write_text(json.dumps(models.model_dump(mode="json"), indent=1) + "\n", encoding="utf-8")
    load_fit_models.cache_clear()

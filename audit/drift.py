"""Dataset-level drift of the synthetic mentions against real ones, per language, through Evidently:
character length, word count, the share of words unseen in the real vocabulary, and the mention
embeddings (when an encoder ran). Evidently's own HTML is saved per language next to summary.json."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np

from clinassay.audit.text import normalize_text

FEATURES = ("chars", "words", "unseen_word_share")
EMBEDDING_AUC_THRESHOLD = 0.55  # Evidently's default for its classifier-based embedding drift


def _features(mentions: list[str], vocabulary: set[str]) -> dict[str, list[float]]:
    chars, words, unseen = [], [], []
    for m in mentions:
        tokens = normalize_text(m).split()
        chars.append(float(len(m)))
        words.append(float(len(tokens)))
        unseen.append(sum(t not in vocabulary for t in tokens) / len(tokens) if tokens else 0.0)
    return {"chars": chars, "words": words, "unseen_word_share": unseen}


def _frame(mentions: list[str], vocabulary: set[str], embeddings: np.ndarray | None):
    import pandas as pd

    data: dict[str, Any] = _features(mentions, vocabulary)
    columns = []
    if embeddings is not None:
        columns = [f"emb_{i}" for i in range(embeddings.shape[1])]
        for i, name in enumerate(columns):
            data[name] = embeddings[:, i].astype(np.float64)
    return pd.DataFrame(data), columns


def language_drift(synthetic: list[str], real: list[str], *, synthetic_embeddings: np.ndarray | None = None,
                   real_embeddings: np.ndarray | None = None, html_path: Path | None = None,
                   seed: int = 0) -> dict[str, Any]:
    """Drift figures for one language; the real set is split so that its own unseen-word share is honest."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift
    from evidently.presets import DataDriftPreset

    rng = random.Random(seed)
    order = list(range(len(real)))
    rng.shuffle(order)
    half = len(order) // 2
    vocab_idx, ref_idx = order[:half], order[half:]
    vocabulary = {t for i in vocab_idx for t in normalize_text(real[i]).split()}
    ref_mentions = [real[i] for i in ref_idx]
    ref_emb = None
    use_embeddings = synthetic_embeddings is not None and real_embeddings is not None and len(ref_idx) >= 10
    if use_embeddings:
        # a few principal directions of the real embeddings keep the drift test fast and stable
        from sklearn.decomposition import PCA

        k = int(min(16, len(ref_idx) - 1, real_embeddings.shape[1]))
        pca = PCA(n_components=k, random_state=seed).fit(np.asarray(real_embeddings[ref_idx], dtype=np.float32))
        ref_emb = pca.transform(np.asarray(real_embeddings[ref_idx], dtype=np.float32))
        syn_emb = pca.transform(np.asarray(synthetic_embeddings, dtype=np.float32))
    else:
        syn_emb = None
    cur_df, emb_cols = _frame(synthetic, vocabulary, syn_emb)
    ref_df, _ = _frame(ref_mentions, vocabulary, ref_emb)
    definition = DataDefinition(numerical_columns=list(FEATURES), embeddings={"mention_embedding": emb_cols} if emb_cols else None)
    metrics: list[Any] = [DataDriftPreset(columns=list(FEATURES))]
    if emb_cols:
        metrics.append(EmbeddingsDrift(embeddings_name="mention_embedding"))
    snapshot = Report(metrics).run(current_data=Dataset.from_pandas(cur_df, data_definition=definition),
                                    reference_data=Dataset.from_pandas(ref_df, data_definition=definition))
    if html_path is not None:
        snapshot.save_html(str(html_path))
    result = _read_snapshot(snapshot.dict())
    drifted = [f for f, v in result["features"].items() if v.get("drifted")]
    result.update({
        "n_synthetic": len(synthetic), "n_reference": len(ref_mentions), "n_vocabulary_reference": len(vocab_idx),
        "drifted_features": drifted,
        "drift_share": round(len(drifted) / len(result["features"]), 4) if result["features"] else 0.0,
        "means": {f: {"synthetic": round(float(cur_df[f].mean()), 4), "reference": round(float(ref_df[f].mean()), 4)}
                  for f in FEATURES},
    })
    return result


def _read_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    """Pull the per-feature drift scores out of Evidently's snapshot dict."""
    features: dict[str, Any] = {}
    for metric in data.get("metrics", []):
        name = str(metric.get("metric_name", ""))
        config = metric.get("config", {})
        value = metric.get("value")
        if name.startswith("ValueDrift"):
            column = config.get("column")
            method = config.get("method")
            threshold = config.get("threshold")
            features[column] = {"score": value, "method": method, "threshold": threshold}
        elif name.startswith("EmbeddingsDrift") or "embeddings_name" in config:
            features["embeddings"] = {"score": value, "method": "classifier ROC AUC (Evidently default)", "threshold": None}
    for column, figures in features.items():
        score, threshold, method = figures.get("score"), figures.get("threshold"), str(figures.get("method"))
        if not isinstance(score, (int, float)):
            figures["drifted"] = None
            continue
        figures["score"] = round(float(score), 6)
        if column == "embeddings":
            figures["threshold"] = EMBEDDING_AUC_THRESHOLD
            figures["drifted"] = bool(score > EMBEDDING_AUC_THRESHOLD)
        elif "p_value" in method:
            figures["drifted"] = bool(score < (threshold if threshold is not None else 0.05))
        else:  # distances (Wasserstein, Jensen-Shannon, ...): drift when at or above the threshold
            figures["drifted"] = bool(score >= (threshold if threshold is not None else 0.1))
    return {"features": features}

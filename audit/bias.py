"""Dataset-level bias: which generator x language cells reject far more than their peers, what an
accepted pair costs per generator, and the fingerprint each LLM leaves on its data.

The fingerprint is a cross-validated character n-gram + logistic regression classifier: if it can tell
the generators apart from the mentions alone (macro-F1 well above chance), or synthetic from real
mentions (ROC AUC well above 0.5), a retriever trained on the data will learn the LLM's style rather
than the clinic's language. The n-grams that give each class away are reported."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from clinassay.audit.config import BiasConfig


def reject_outliers(matrix: list[dict[str, Any]], config: BiasConfig) -> list[dict[str, Any]]:
    """Cells whose reject rate is > factor x the language's median and at least min_gap above it."""
    per_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in matrix:
        per_lang[row["language"]].append(row)
    outliers = []
    for lang, rows in sorted(per_lang.items()):
        median = statistics.median(r["reject_rate"] for r in rows)
        for r in rows:
            rate = r["reject_rate"]
            if len(rows) >= 2 and rate >= config.outlier_factor * median and rate - median >= config.outlier_min_gap:
                top = Counter(r["reasons"]).most_common(1)
                outliers.append({"language": lang, "generator": r["generator"], "reject_rate": rate,
                                 "median_reject_rate": round(median, 6), "main_reason": top[0][0] if top else None,
                                 "detail": f"{r['generator']} rejects {rate:.0%} of its {lang} pairs vs a median of "
                                           f"{median:.0%} across generators"})
    return outliers


def _pipeline(n_classes: int):
    """liblinear (one-vs-rest for >2 classes): ~20x faster than lbfgs on char n-grams, same macro-F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    model = LogisticRegression(solver="liblinear", C=1.0)
    return make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_features=20000, sublinear_tf=True),
        model if n_classes == 2 else OneVsRestClassifier(model),
    )


def _top_features(pipeline, classes: list[str], top: int) -> dict[str, list[str]]:
    import numpy as np

    vectorizer, model = pipeline.steps[0][1], pipeline.steps[1][1]
    names = vectorizer.get_feature_names_out()
    coef = np.vstack([e.coef_ for e in model.estimators_]) if hasattr(model, "estimators_") else model.coef_
    out = {}
    if coef.shape[0] == 1:
        order = coef[0].argsort()
        out[str(model.classes_[1])] = [names[i] for i in order[::-1][:top]]
        out[str(model.classes_[0])] = [names[i] for i in order[:top]]
    else:
        for k, cls in enumerate(model.classes_):
            out[str(cls)] = [names[i] for i in coef[k].argsort()[::-1][:top]]
    return out


def _cross_validate(texts: list[str], labels: list[str], *, folds: int, top: int, positive: str | None = None) -> dict[str, Any]:
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    counts = Counter(labels)
    k = max(2, min(folds, min(counts.values())))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    proba = cross_val_predict(_pipeline(len(counts)), texts, labels, cv=cv, method="predict_proba")
    classes = sorted(counts)
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    result: dict[str, Any] = {"n": len(texts), "classes": dict(sorted(counts.items())), "folds": k,
                              "macro_f1": round(float(f1_score(labels, predicted, average="macro")), 4),
                              "chance_macro_f1": round(1.0 / len(classes), 4)}
    if len(classes) == 2:
        pos = positive or classes[1]
        y = [1 if l == pos else 0 for l in labels]
        result["roc_auc"] = round(float(roc_auc_score(y, proba[:, classes.index(pos)])), 4)
    else:
        result["roc_auc_ovr"] = round(float(roc_auc_score(labels, proba, multi_class="ovr", labels=classes)), 4)
    fitted = _pipeline(len(counts)).fit(texts, labels)
    result["top_features"] = _top_features(fitted, classes, top)
    return result


def fingerprints(samples: dict[str, Any], reference_by_lang: dict[str, list[str]], config: BiasConfig) -> dict[str, Any]:
    """Per language: generators apart (if >= 2 with enough mentions) and synthetic vs real (if a reference)."""
    out: dict[str, Any] = {}
    for lang, reservoir in sorted(samples.items()):
        items = reservoir.items
        entry: dict[str, Any] = {}
        by_gen = Counter(s.generator for s in items)
        kept = {g for g, n in by_gen.items() if n >= config.fingerprint_min_per_class}
        if len(kept) >= 2:
            texts = [s.mention for s in items if s.generator in kept]
            labels = [s.generator for s in items if s.generator in kept]
            entry["generators"] = _cross_validate(texts, labels, folds=config.fingerprint_folds, top=config.top_features)
            entry["generators"]["meaning"] = ("macro-F1 of telling the generators apart from the mentions alone; "
                                              "chance is chance_macro_f1")
        else:
            entry["generators"] = {"skipped": f"needs >= 2 generators with >= {config.fingerprint_min_per_class} "
                                              f"mentions in {lang}; have {dict(by_gen)}"}
        real = reference_by_lang.get(lang, [])
        if real:
            synthetic = [s.mention for s in items]
            n = min(len(real), len(synthetic))
            if n >= config.fingerprint_min_per_class:
                texts = synthetic[:n] + real[:n]
                labels = ["synthetic"] * n + ["real"] * n
                entry["synthetic_vs_real"] = _cross_validate(texts, labels, folds=config.fingerprint_folds,
                                                             top=config.top_features, positive="synthetic")
                entry["synthetic_vs_real"]["meaning"] = "ROC AUC of telling synthetic from real mentions; 0.5 is chance"
            else:
                entry["synthetic_vs_real"] = {"skipped": f"needs >= {config.fingerprint_min_per_class} mentions on each side"}
        out[lang] = entry
    return out

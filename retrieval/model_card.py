"""The model card of a MODEL_DIR: `model_card.json` (machine-readable: audit manifest hash, data
sizes per language and generator, base model, hyperparameters, evaluation) and README.md, a Hugging
Face Hub card: YAML front matter (base_model, language, license, library_name, pipeline_tag, tags,
datasets, and a model-index with the per-language metrics of each evaluation given) above the same
facts laid out for people, and how to load the model with the plain sentence-transformers classes.

The front matter is written by huggingface_hub's own `ModelCardData` / `EvalResult`, so that it is
the schema the Hub reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clinassay.retrieval.metrics import METRICS
from clinassay.retrieval.metrics_file import MetricsFile

TAGS = ("sentence-transformers", "sentence-similarity", "feature-extraction", "information-retrieval",
        "clinassay", "icd-10", "icd-10-cm", "clinical-coding", "medical", "synthetic-data")
METRIC_NAMES = {"mrr@10": "MRR@10", "ndcg@10": "NDCG@10", "r@1": "Recall@1", "r@3": "Recall@3", "r@5": "Recall@5",
                "r@10": "Recall@10"}
STAGE_NAMES = {"biencoder": "stage 1 (bi-encoder)", "reranker": "stage 1 + reranker"}
# the Hub groups a model-index's results by task type and dataset (not by task name): one task type per stage
STAGE_TASKS = {"biencoder": "information-retrieval", "reranker": "text-ranking"}
DEFAULT_NAME = "clinassay-icd10-retriever"


@dataclass(frozen=True)
class HubCard:
    """What the Hub front matter needs beyond `model_card.json`: the evaluations to list (each a
    `metrics.json` of `clinassay evaluate`, read with `metrics_file.load_metrics`), the licence and Hub datasets a publisher
    chooses, the name in the model-index, and how the card's code refers to the model."""

    evaluations: Sequence[MetricsFile] = ()
    license: str | None = None
    datasets: Sequence[str] = ()
    name: str = DEFAULT_NAME
    biencoder_ref: str = "MODEL_DIR/biencoder"
    reranker_ref: str = "MODEL_DIR/reranker"
    extra_tags: Sequence[str] = field(default_factory=tuple)


def write_model_card(model_dir: Path | str, card: dict, hub: HubCard | None = None) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    (model_dir / "README.md").write_text(render_model_card(card, hub), encoding="utf-8")


def base_model_on_hub(name: str | None) -> tuple[str | None, str | None]:
    """(Hub id, licence) of a base model: the registered offline models know theirs; another name that
    looks like a Hub id is one (licence unknown); a local path is neither."""
    from clinassay.retrieval.models import MODEL_REGISTRY

    if not name:
        return None, None
    spec = MODEL_REGISTRY.get(name)
    if spec is not None:
        return spec.hub_id, spec.license
    if name.count("/") == 1 and not Path(name).expanduser().exists() and not name.startswith((".", "/", "~")):
        return name, None
    return None, None


def languages_of(card: dict) -> list[str]:
    """The corpus's languages, then any other language of the training pairs."""
    found = list((card.get("corpus") or {}).get("languages") or [])
    for language in ((card.get("data") or {}).get("languages") or {}):
        if language not in found:
            found.append(language)
    return found


def eval_results(evaluations: Sequence[MetricsFile]):
    """One huggingface_hub `EvalResult` per evaluation, stage, language slice (and overall) and metric."""
    from huggingface_hub import EvalResult

    results = []
    for metrics in evaluations:
        eval_set = metrics.eval_set
        stem = Path(eval_set.path).stem or "evaluation"
        dataset_name = f"{stem} ({eval_set.items} mentions, sha256 {eval_set.sha256[:12]})"
        for stage, block in metrics.stages.items():
            slices = sorted(block.languages.items()) + [("all", block.overall)]
            for language, values in slices:
                for metric in METRICS:
                    value = values.figure(metric)
                    if value is None:
                        continue
                    results.append(EvalResult(
                        task_type=STAGE_TASKS.get(stage, "information-retrieval"),
                        task_name=f"ICD-10 code retrieval, {STAGE_NAMES.get(stage, stage)}",
                        dataset_type=stem, dataset_name=dataset_name, dataset_config=language, dataset_split="test",
                        metric_type=metric, metric_name=f"{METRIC_NAMES.get(metric, metric)} ({language})",
                        metric_value=float(value),
                    ))
    return results


def hub_metadata(card: dict, hub: HubCard | None = None):
    """The card's front matter as huggingface_hub's `ModelCardData`."""
    from huggingface_hub import ModelCardData

    hub = hub or HubCard()
    base_id, base_license = base_model_on_hub(card.get("base_model"))
    tags = list(TAGS)
    if card.get("document_encoder") not in (None, "biencoder"):
        tags.append("asymmetric")  # a Router: query route trained, document route the base model
    if card.get("reranker_backbone"):
        tags.append("reranker")
    tags += [t for t in hub.extra_tags if t not in tags]
    results = eval_results(hub.evaluations)
    return ModelCardData(
        base_model=base_id,
        language=languages_of(card) or None,
        license=hub.license or base_license or "other",
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=tags,
        datasets=list(hub.datasets) or None,
        metrics=[m for m in METRICS if any(r.metric_type == m for r in results)] or None,
        model_name=hub.name,
        eval_results=results or None,
    )


def front_matter(card: dict, hub: HubCard | None = None) -> str:
    return "---\n" + hub_metadata(card, hub).to_yaml() + "\n---\n"


def render_model_card(card: dict, hub: HubCard | None = None) -> str:
    hub = hub or HubCard()
    data = card.get("data", {})
    bi = (card.get("evaluation") or {}).get("biencoder") or {}
    rr = (card.get("evaluation") or {}).get("reranker") or {}
    config = card.get("config", {})
    lines = [
        front_matter(card, hub),
        f"# {hub.name}: a two-stage ICD-10 code retriever trained with clinassay",
        "",
        f"- base model: `{card.get('base_model')}`; code side: `{card.get('document_encoder')}`; "
        f"reranker backbone: `{card.get('reranker_backbone')}`",
        f"- trained on an audit that passed: manifest sha256 `{card.get('audit', {}).get('manifest_sha256')}`, "
        f"accepted.jsonl sha256 `{card.get('audit', {}).get('accepted_sha256')}`",
        f"- corpus: {card.get('corpus', {}).get('codes')} codes, {card.get('corpus', {}).get('texts')} label texts "
        f"in {', '.join(card.get('corpus', {}).get('languages', []))}; index `{card.get('corpus', {}).get('index')}`",
        "",
        "## Use it",
        "",
        "Stage 1 is a plain sentence-transformers model; when the code side is frozen it is a `Router` with "
        "a `query` route (trained) and a `document` route (the base model), and `encode_query` / "
        "`encode_document` pick the route and the prompt:",
        "",
        "```python",
        "from sentence_transformers import CrossEncoder, SentenceTransformer",
        "",
        f'model = SentenceTransformer("{hub.biencoder_ref}")',
        'queries = model.encode_query(["infección del tracto urinario"], normalize_embeddings=True)',
        'codes = model.encode_document(["Urinary tract infection, site not specified"], normalize_embeddings=True)',
        "print(model.similarity(queries, codes))  # the cosine `clinassay search` ranks by",
        *([f'reranker = CrossEncoder("{hub.reranker_ref}")',
           'print(reranker.predict([("infección del tracto urinario", "Urinary tract infection, site not specified")]))']
          if card.get("reranker_backbone") else []),
        "```",
        "",
        "`clinassay search --model FOLDER \"text\"` uses the faiss index in `index/` (the corpus's label vectors, "
        "a code scored by its best label).",
        "",
        "## Data",
        f"{data.get('pairs')} accepted pairs -> {data.get('train_examples')} training and {data.get('dev_examples')} "
        f"dev examples ({data.get('dev_codes')} held-out codes); {data.get('reranker_groups')} reranker groups.",
        "",
        "| language | pairs |",
        "| --- | --- |",
        *[f"| {lang} | {n} |" for lang, n in (data.get("languages") or {}).items()],
        "",
        "| generator | pairs |",
        "| --- | --- |",
        *[f"| {gen} | {n} |" for gen, n in (data.get("generators") or {}).items()],
        "",
        *_evaluation_section(hub.evaluations),
        "## Training",
        f"- stage 1: {bi.get('global_step')} steps, {bi.get('train_steps_per_second')} steps/s; "
        f"dev MRR@10 {((bi.get('dev') or {}).get('mrr@10'))}",
        f"- stage 2: {rr.get('global_step')} steps, {rr.get('train_steps_per_second')} steps/s" if rr else "- stage 2: not trained",
        *([f"- stage 2 fused with stage 1 at reranker weight {rr['fusion']['weight']}, fitted on "
           f"{rr['fusion']['dev_queries']} dev mentions (dev MRR@10 by weight: {rr['fusion']['dev_mrr@10']})"]
          if rr.get("fusion") else []),
        f"- seed {card.get('seed')}; {card.get('training_seconds')} s in all",
        "",
        "## Hyperparameters",
        "```json",
        json.dumps({k: config.get(k) for k in ("biencoder", "reranker")}, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _evaluation_section(evaluations: Sequence[MetricsFile]) -> list[str]:
    if not evaluations:
        return []
    lines = ["## Evaluation", ""]
    for metrics in evaluations:
        eval_set = metrics.eval_set
        lines += [f"`{Path(eval_set.path).name}` ({eval_set.items} mentions, sha256 `{eval_set.sha256[:12]}`):", "",
                  "| stage | language | n | " + " | ".join(METRIC_NAMES[m] for m in METRICS) + " |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in METRICS) + " |"]
        for stage, block in metrics.stages.items():
            slices = sorted(block.languages.items()) + [("all", block.overall)]
            for language, values in slices:
                figures = [values.figure(m) for m in METRICS]
                cells = " | ".join("" if v is None else f"{v:.4f}" for v in figures)
                lines.append(f"| {STAGE_NAMES.get(stage, stage)} | {language} | {values.n} | {cells} |")
        lines.append("")
    return lines

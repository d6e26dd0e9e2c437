"""The model card of a MODEL_DIR: `model_card.json` (machine-readable: audit manifest hash, data
sizes per language and generator, base model, hyperparameters, evaluation) and a short README.md
that lays the same facts out for people."""

from __future__ import annotations

import json
from pathlib import Path


def write_model_card(model_dir: Path | str, card: dict) -> None:
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    (model_dir / "README.md").write_text(render_model_card(card), encoding="utf-8")


def render_model_card(card: dict) -> str:
    data = card.get("data", {})
    bi = (card.get("evaluation") or {}).get("biencoder") or {}
    rr = (card.get("evaluation") or {}).get("reranker") or {}
    config = card.get("config", {})
    lines = [
        "# clinassay two-stage ICD-10 retriever",
        "",
        f"- base model: `{card.get('base_model')}`; code side: `{card.get('document_encoder')}`; "
        f"reranker backbone: `{card.get('reranker_backbone')}`",
        f"- trained on an audit that passed: manifest sha256 `{card.get('audit', {}).get('manifest_sha256')}`, "
        f"accepted.jsonl sha256 `{card.get('audit', {}).get('accepted_sha256')}`",
        f"- corpus: {card.get('corpus', {}).get('codes')} codes, {card.get('corpus', {}).get('texts')} label texts "
        f"in {', '.join(card.get('corpus', {}).get('languages', []))}; index `{card.get('corpus', {}).get('index')}`",
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

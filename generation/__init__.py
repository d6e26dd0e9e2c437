"""generation: synthetic (mention, code) pairs from LLMs through LiteLLM, and from real terminology labels.

    from clinassay.generation import generate, build_plan
    summary = generate(config.generation, out="pairs.jsonl", resume=True)

Light to import: LiteLLM, llama.cpp and the terminology load only when a run needs them.
"""

from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.plan import Plan, Request, build_plan
from clinassay.generation.records import LANGUAGES, Pair, Reject, pair_id
from clinassay.generation.runner import RunSummary, generate

__all__ = ["LANGUAGES", "GenerationConfig", "ModelConfig", "Pair", "Plan", "Reject", "Request", "RunSummary",
           "build_plan", "generate", "pair_id"]

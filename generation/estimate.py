"""What a plan will cost before it runs (the dry run): requests, pairs, tokens and dollars per model."""

from __future__ import annotations

from dataclasses import dataclass

from clinassay.generation.generators import generators
from clinassay.generation.plan import Plan

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MENTION = 12
REPLY_OVERHEAD_TOKENS = 15


@dataclass
class ModelEstimate:
    model: str
    litellm_model: str
    requests: int = 0
    pending: int = 0
    expected_pairs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0


def estimate_plan(plan: Plan, *, done: set[str] | frozenset[str] = frozenset()) -> list[ModelEstimate]:
    """Per configured model; `pending`, tokens and cost count only requests not in `done`."""
    by_name = generators(plan.config)
    rows = {name: ModelEstimate(name, g.config.model) for name, g in by_name.items()}
    for r in plan.requests:
        row = rows[r.model]
        row.requests += 1
        row.expected_pairs += r.n
        if r.key in done:
            continue
        row.pending += 1
        if r.prompt is not None:
            row.input_tokens += int(len(r.prompt.text) / CHARS_PER_TOKEN) + 1
            row.output_tokens += r.n * TOKENS_PER_MENTION + REPLY_OVERHEAD_TOKENS
    for name, row in rows.items():
        row.cost_usd = by_name[name].estimate_cost(row.input_tokens, row.output_tokens) if row.pending else 0.0
    return list(rows.values())


def format_estimate(rows: list[ModelEstimate], *, codes: int, languages: list[str]) -> str:
    header = f"{'model':<20} {'litellm model':<32} {'requests':>8} {'to run':>7} {'pairs':>7} {'tok in':>9} {'tok out':>9} {'est. USD':>10}"
    lines = [f"plan: {codes} codes x {len(languages)} languages ({', '.join(languages)})", header, "-" * len(header)]
    total_cost: float | None = 0.0
    for r in rows:
        cost = "unknown" if r.cost_usd is None else f"{r.cost_usd:.4f}"
        lines.append(f"{r.model:<20} {r.litellm_model:<32} {r.requests:>8} {r.pending:>7} {r.expected_pairs:>7} "
                     f"{r.input_tokens:>9} {r.output_tokens:>9} {cost:>10}")
        total_cost = None if total_cost is None or r.cost_usd is None else total_cost + r.cost_usd
    total = "unknown (a model has no price: set input_cost_per_token/output_cost_per_token)" if total_cost is None \
        else f"{total_cost:.4f}"
    lines.append(f"total: {sum(r.requests for r in rows)} requests ({sum(r.pending for r in rows)} to run), "
                 f"{sum(r.expected_pairs for r in rows)} expected pairs, "
                 f"{sum(r.input_tokens + r.output_tokens for r in rows)} tokens, est. USD {total}")
    return "\n".join(lines)

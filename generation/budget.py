"""The run's budget: a cost ceiling and a request ceiling that stop the run cleanly, not mid-write.

Both count what earlier (resumed) runs into the same output already spent, so a budget is a
budget for the output file, not for one invocation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Budget:
    max_cost_usd: float | None = None
    max_requests: int | None = None
    cost_usd: float = 0.0
    requests: int = 0
    stopped: str | None = None
    """Why new requests stopped: None, 'max_cost_usd' or 'max_requests'."""

    def allows_another(self) -> bool:
        """True when one more request may start (in-flight requests are counted as started)."""
        if self.max_requests is not None and self.requests >= self.max_requests:
            self.stopped = self.stopped or "max_requests"
        elif self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd:
            self.stopped = self.stopped or "max_cost_usd"
        return self.stopped is None

    def start(self) -> None:
        self.requests += 1

    def spend(self, cost_usd: float | None) -> None:
        self.cost_usd += cost_usd or 0.0

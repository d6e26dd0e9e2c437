"""The progress bar: requests done (with tqdm's rate and ETA), pairs made, rejects, tokens and cost."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(self, total: int, *, enabled: bool = True, description: str = "generate") -> None:
        self.total = total
        self.enabled = enabled
        self.description = description
        self._bar: Any = None
        self.pairs = self.rejects = self.tokens = 0
        self.cost_usd = 0.0

    def __enter__(self) -> "Progress":
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.description, unit="req", file=sys.stderr,
                             dynamic_ncols=True, smoothing=0.1)
        return self

    def update(self, *, pairs: int, rejects: int, tokens: int, cost_usd: float | None) -> None:
        self.pairs += pairs
        self.rejects += rejects
        self.tokens += tokens
        self.cost_usd += cost_usd or 0.0
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"pairs={self.pairs} rejects={self.rejects} tok={self.tokens} ${self.cost_usd:.4f}", refresh=False
            )
            self._bar.update(1)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

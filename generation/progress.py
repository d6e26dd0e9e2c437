"""The progress bar: requests done (with tqdm's rate and ETA), pairs made, rejects, tokens and cost."""

from __future__ import annotations

import sys
from typing import Any


def tqdm_style() -> dict[str, Any]:
    """tqdm settings for a bar on stderr: live on a terminal; on a file or pipe, ASCII redrawn every
    10 s at a fixed width, with no escape codes (tqdm then writes only carriage returns). `disable=False`
    is passed beside it: a bar asked for is drawn even where TQDM_DISABLE quiets the libraries' bars."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if terminal:
        return {"dynamic_ncols": True, "mininterval": 0.1}
    return {"ascii": True, "ncols": 100, "mininterval": 10.0}


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
                             smoothing=0.1, disable=False, **tqdm_style())
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

"""The generation package's own errors, raised `from` LiteLLM's so callers never match on its types.

A failed request is data (a `request_failed` reject, retried by a resumed run); these errors are
what the LLM client raises to the runner, after LiteLLM's own retries and fallbacks are spent.
"""

from __future__ import annotations

from clinassay.terminology.errors import ClinassayInputError


class GenerationError(Exception):
    """A generator could not produce a reply."""


class LLMRequestError(GenerationError):
    """The provider failed (server error, timeout, connection) after retries and fallbacks."""


class RateLimitedError(LLMRequestError):
    """The provider kept answering 429 after retries."""


class LLMAuthError(GenerationError):
    """The provider refused the credentials or the model: retrying will not help, the model is stopped."""


class GenerationInputError(ClinassayInputError):
    """Bad generation input: a missing API key variable, an output that already exists, ..."""


class EmbeddedModelError(GenerationError):
    """The embedded model could not be assembled or its server did not start."""

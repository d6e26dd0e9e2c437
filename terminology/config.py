"""The `[terminology]` section of the configuration file."""

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class TerminologyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cache_dir: Path | None = None
    """Where the parsed terminology and imported tables live (default: the user's cache)."""

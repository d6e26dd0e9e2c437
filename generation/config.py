"""The `[generation]` section of the configuration file."""

from pydantic import BaseModel, ConfigDict


class GenerationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

"""The `[retrieval]` section of the configuration file."""

from pydantic import BaseModel, ConfigDict


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

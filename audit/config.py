"""The `[audit]` section of the configuration file."""

from pydantic import BaseModel, ConfigDict


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

"""The `[reports]` section of the configuration file."""

from pydantic import BaseModel, ConfigDict


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

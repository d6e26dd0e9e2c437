"""Each module adds its commands through `register(app)`; keep their imports light (no torch)."""

from clinassay.commands import audit, export, generate, report, retrieval, run, terminology

COMMAND_MODULES = (terminology, generate, audit, report, retrieval, export, run)

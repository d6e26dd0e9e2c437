"""clinassay: audit and bias-check toolkit for LLM-made clinical-coding data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clinassay")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"

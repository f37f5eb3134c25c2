"""The package version (bottom layer: the report and the CLI read it without importing ``omnilab``)."""

__version__ = "0.1.0"

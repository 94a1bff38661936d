"""The package version, importable without importing the package's lazy API."""

__version__ = "0.1.0"

"""The package version, in one place (read by `simulator.__version__` and the writers)."""

VERSION = "0.1.0"

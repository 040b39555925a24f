"""The local demo: `python -m demo` (or `make demo`)."""

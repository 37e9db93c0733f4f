"""Benchmarks for mlops-console: `python -m bench` (see the Performance section of README.md)."""

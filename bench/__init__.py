"""Benchmarks for mlops-console: `python -m bench` (see bench/PERFORMANCE.md)."""

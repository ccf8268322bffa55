"""Benchmarks: `make bench` (or `python -m benchmarks [NAME...]`) runs every
``benchmarks/bench_*.py`` module's ``main() -> int`` and prints its table."""

"""rnnforecast's own benchmark suite: `python -m bench.run [--quick] [--only NAME]` (see docs/benchmarks.md)."""

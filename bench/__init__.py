"""Benchmarks: each script prints one JSON line on stdout (progress goes to stderr)."""

"""Benchmarks with paper-level targets (long runs; not part of the test suite)."""

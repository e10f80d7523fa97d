"""Reliability tests: bad input, hostile configs, concurrency, crash safety and secrets."""

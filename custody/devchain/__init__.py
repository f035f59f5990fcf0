"""Test chains for tests and the embedded demo, never production."""

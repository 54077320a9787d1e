"""Offline tooling: the recording engine, `make preview`, and helpers for the tests."""

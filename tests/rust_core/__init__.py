"""Tests of rust_core: equivalence with the reference, external oracles, API contract."""

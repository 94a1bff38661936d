"""Helpers shared by the test files (one module per topic); fixtures live in tests/conftest.py."""

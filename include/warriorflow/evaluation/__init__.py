"""Sandboxed evaluation: benchmark loaders, check programs, scoring, comparison and promotion."""

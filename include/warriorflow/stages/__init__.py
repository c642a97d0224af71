"""Flywheel stages: plain functions and small classes over data (mine, dedup, difficulty, compress,
battle, rate, select, snapshot, train, evaluate)."""

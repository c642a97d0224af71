"""The WarriorCoder method as pure functions: mining prompts and sanitising, MinHash, difficulty,
decontamination, k-center, planning, the battle batch, judging, votes, rating and tagging.

No rating store, no object store, no environment: a backend, when a step needs a model, is passed in.
An import-linter contract (`make lint`) keeps it so.
"""

"""The WarriorCoder method as pure functions: chat templates and the Magpie prefix, mining and its
sanitising, MinHash, difficulty, decontamination, k-center, planning, the battle batch, judging, votes,
rating and tagging; the one prompt renderer; the Backend protocol the steps call models through.

No rating store, no object store, no environment: a backend, when a step needs a model, is passed in.
An import-linter contract (`make lint`) keeps it so.
"""

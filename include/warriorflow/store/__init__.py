"""The stores and their formats: the DuckDB rating store (schema in sql/), the object store (local | S3),
the key layout, the one JSONL codec, the one ingest loop, the battle checkpoint, benchmark files, dataset
snapshots and the vote log. Only the writer (the single-slot pool) opens the rating store for writing."""

-- Schema version 2: what the instruction pipeline (dedup, decontamination, per-stage runs) keeps.

-- MinHash signatures of every instruction that passed dedup: the persistent near-duplicate index.
CREATE TABLE minhash_signatures (
    instruction_id  VARCHAR PRIMARY KEY,
    num_perm        INTEGER NOT NULL,
    seed            INTEGER NOT NULL,
    shingle_size    INTEGER NOT NULL,
    algorithm       INTEGER NOT NULL,         -- stages.dedup.ALGORITHM_VERSION: signatures compare only within one
    signature       BLOB NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The strongest overlap of each checked instruction with each evaluation set (the report's histogram).
CREATE TABLE contamination (
    instruction_id  VARCHAR NOT NULL,
    benchmark       VARCHAR NOT NULL,
    task_id         VARCHAR,
    ngram           INTEGER NOT NULL,
    shared_ngrams   INTEGER NOT NULL,
    overlap         DOUBLE NOT NULL,          -- shared n-grams / the instruction's n-grams
    run_id          VARCHAR NOT NULL,
    checked_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (instruction_id, benchmark)
);

-- One row per stage and run: what went in, what came out, counts per drop reason.
CREATE TABLE stage_runs (
    run_id          VARCHAR NOT NULL,
    stage           VARCHAR NOT NULL,
    counts          JSON NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (run_id, stage)
);

-- The median judge score (NULL until scored). Instruction status moves
-- mined -> unique (dedup) -> scored (difficulty) -> clean (decontamination) -> selected (compression),
-- or to dropped with drop_reason at any stage.
ALTER TABLE instructions ADD COLUMN difficulty DOUBLE;

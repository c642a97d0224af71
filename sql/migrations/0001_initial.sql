-- warriorflow rating store, schema version 1.
-- Ids are content-addressed (see include/warriorflow/ids.py); every write is an upsert on them, so
-- writing the same thing twice changes nothing. Times are UTC. Relations are documented, not
-- enforced with FOREIGN KEY (DuckDB forbids updating rows that foreign keys point at).

CREATE TABLE experts (
    name            VARCHAR PRIMARY KEY,
    backend         VARCHAR NOT NULL,
    model_source    VARCHAR NOT NULL,
    weights_id      VARCHAR NOT NULL,        -- same weights_id = same expert for "no self-judging"
    roles           VARCHAR[] NOT NULL,
    config          JSON NOT NULL,
    first_seen_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Mined instructions with their provenance.
CREATE TABLE instructions (
    instruction_id  VARCHAR PRIMARY KEY,     -- hash of the normalised text
    text            VARCHAR NOT NULL,
    expert          VARCHAR NOT NULL,        -- the miner (the attacker in its battles)
    temperature     DOUBLE,
    top_p           DOUBLE,
    seed            BIGINT,
    prefix_sha256   VARCHAR,                 -- hash of the pre-query prefix / few-shot prompt
    mined_at        TIMESTAMP NOT NULL,
    run_id          VARCHAR NOT NULL,
    source_uri      VARCHAR,                 -- the result file it was ingested from
    status          VARCHAR NOT NULL DEFAULT 'mined',  -- mined | kept | dropped | selected
    drop_reason     VARCHAR,
    duplicate_of    VARCHAR,
    task_category   VARCHAR
);

-- Records dropped before or after they had an instruction id, each with its reason.
CREATE TABLE dropped_records (
    record_id       VARCHAR PRIMARY KEY,
    stage           VARCHAR NOT NULL,        -- mine | dedup | difficulty | decontaminate | compress | quarantine
    reason          VARCHAR NOT NULL,
    expert          VARCHAR,
    instruction_id  VARCHAR,
    raw_text        VARCHAR,
    provenance      JSON,
    run_id          VARCHAR NOT NULL,
    dropped_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE difficulty_scores (
    instruction_id  VARCHAR NOT NULL,
    judge           VARCHAR NOT NULL,
    score           INTEGER,                 -- 1..10, NULL when invalid
    valid           BOOLEAN NOT NULL,
    raw_text        VARCHAR,
    run_id          VARCHAR NOT NULL,
    scored_at       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (instruction_id, judge)
);

CREATE TABLE embeddings (
    instruction_id  VARCHAR NOT NULL,
    model           VARCHAR NOT NULL,
    dim             INTEGER NOT NULL,
    vector          FLOAT[] NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (instruction_id, model)
);

-- Instructions chosen by compression (KCenterGreedy), per run.
CREATE TABLE instruction_selections (
    instruction_id  VARCHAR PRIMARY KEY,
    run_id          VARCHAR NOT NULL,
    pick_rank       INTEGER NOT NULL,
    embed_model     VARCHAR NOT NULL,
    selected_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE responses (
    response_id     VARCHAR PRIMARY KEY,     -- hash(instruction, expert, sampling, seed)
    instruction_id  VARCHAR NOT NULL,
    expert          VARCHAR NOT NULL,
    text            VARCHAR NOT NULL,
    sampling        JSON NOT NULL,
    seed            BIGINT,
    finish_reason   VARCHAR,
    prompt_tokens   INTEGER,
    completion_tokens INTEGER,
    run_id          VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE battles (
    battle_id       VARCHAR PRIMARY KEY,     -- hash(instruction, attacker, defender)
    instruction_id  VARCHAR NOT NULL,
    attacker        VARCHAR NOT NULL,
    defender        VARCHAR NOT NULL,
    attacker_response_id VARCHAR,
    defender_response_id VARCHAR,
    battle_order    BIGINT,                  -- the recorded order the Elo fold runs in
    status          VARCHAR NOT NULL DEFAULT 'planned',  -- planned | done | failed
    run_id          VARCHAR NOT NULL,
    planned_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    completed_at    TIMESTAMP
);

CREATE TABLE votes (
    vote_id         VARCHAR PRIMARY KEY,     -- hash(battle, judge, shown order)
    battle_id       VARCHAR NOT NULL,
    judge           VARCHAR NOT NULL,
    shown_order     VARCHAR NOT NULL,        -- attacker_first | defender_first
    verdict         VARCHAR NOT NULL,        -- attacker | defender | tie | invalid
    raw_text        VARCHAR,
    run_id          VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- A cache: ratings are a pure function of the vote log and the battle order.
CREATE TABLE rating_history (
    rating_version  VARCHAR NOT NULL,        -- hash of the vote log it was computed from
    method          VARCHAR NOT NULL,        -- elo | bt
    expert          VARCHAR NOT NULL,
    rating          DOUBLE NOT NULL,
    lo              DOUBLE,
    hi              DOUBLE,
    n_battles       INTEGER NOT NULL,
    computed_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (rating_version, method, expert)
);

-- The gold response per instruction.
CREATE TABLE gold_selections (
    instruction_id  VARCHAR PRIMARY KEY,
    response_id     VARCHAR NOT NULL,
    expert          VARCHAR NOT NULL,
    final_score     DOUBLE NOT NULL,
    rating_version  VARCHAR NOT NULL,
    selected_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE snapshots (
    snapshot_id     VARCHAR PRIMARY KEY,
    uri             VARCHAR NOT NULL,
    manifest_sha256 VARCHAR NOT NULL,
    n_examples      INTEGER NOT NULL,
    config_hash     VARCHAR NOT NULL,
    rating_version  VARCHAR,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE training_runs (
    training_run_id VARCHAR PRIMARY KEY,
    snapshot_id     VARCHAR NOT NULL,
    base_model      VARCHAR NOT NULL,
    config          JSON NOT NULL,
    status          VARCHAR NOT NULL,        -- running | done | failed
    output_uri      VARCHAR,
    losses          JSON,
    started_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at     TIMESTAMP
);

CREATE TABLE eval_results (
    eval_id         VARCHAR PRIMARY KEY,     -- hash(model, benchmark, data sha256, harness version)
    model_ref       VARCHAR NOT NULL,        -- a training_run_id or a named baseline
    benchmark       VARCHAR NOT NULL,
    pass_at_1       DOUBLE NOT NULL,
    n_problems      INTEGER NOT NULL,
    data_sha256     VARCHAR NOT NULL,
    harness_version VARCHAR NOT NULL,
    details         JSON,
    evaluated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Result files merged by ingest: re-ingesting a file is a no-op.
CREATE TABLE ingested_files (
    uri             VARCHAR PRIMARY KEY,
    sha256          VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    n_rows          INTEGER NOT NULL,
    ingested_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Batches that failed validation: moved to quarantine/, never deleted.
CREATE TABLE quarantine (
    batch_uri       VARCHAR PRIMARY KEY,
    stage           VARCHAR NOT NULL,
    reason          VARCHAR NOT NULL,
    report_uri      VARCHAR,
    quarantined_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

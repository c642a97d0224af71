-- Schema version 13: the vote log the rate step rated, kept for the gold step (a cache, like rating_history). A
-- log is identified by a fingerprint of everything it is built from (votes, battles, executions, calibrations and
-- the vote rules: store/vote_log.py log_fingerprint); the gold step reads the saved log when the fingerprint is
-- unchanged instead of building it again. Only the latest log is kept.
CREATE TABLE rating_logs (
    rating_version  VARCHAR PRIMARY KEY,
    fingerprint     VARCHAR NOT NULL,
    experts         VARCHAR[] NOT NULL,     -- the log's experts, sorted: a and d below index them
    n_battles       BIGINT NOT NULL,
    computed_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Each battle of a saved log, in log order (pos): its competitors and its weighted vote tallies.
CREATE TABLE rating_log_battles (
    rating_version  VARCHAR NOT NULL,
    pos             BIGINT NOT NULL,
    battle_id       VARCHAR NOT NULL,
    a               INTEGER NOT NULL,
    d               INTEGER NOT NULL,
    t_a             DOUBLE NOT NULL,
    t_b             DOUBLE NOT NULL
);

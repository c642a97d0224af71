-- Schema version 5: promotion decisions (evaluation results live in eval_results, schema version 1).

-- One row per comparison of a candidate model with the previous one (the champion, else the baseline).
-- The champion is the most recently promoted candidate.
CREATE TABLE model_promotions (
    decision_id     VARCHAR PRIMARY KEY,     -- hash(candidate, previous, deltas, promoted)
    candidate       VARCHAR NOT NULL,        -- a model_ref (training_run_id or a named baseline)
    previous        VARCHAR,                 -- the model it was compared with; NULL for the first one
    promoted        BOOLEAN NOT NULL,
    deltas          JSON NOT NULL,           -- benchmark -> pass@1 delta (candidate - previous)
    mean_delta      DOUBLE,
    rule            JSON NOT NULL,           -- the evaluation.promotion settings that decided
    reasons         JSON NOT NULL,
    harness_version VARCHAR NOT NULL,
    decided_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);

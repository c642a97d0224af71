-- Schema version 9: probabilistic votes and judge calibration.
-- A vote keeps the judge's positional probabilities P([[A]]), P([[B]]), P([[Tie]]) over the constrained
-- choices (NULL where the backend reports no log-probabilities): ratings can be recomputed from them
-- under another rule (margin, debiasing) without asking any judge again.
ALTER TABLE votes ADD COLUMN p_a DOUBLE;
ALTER TABLE votes ADD COLUMN p_b DOUBLE;
ALTER TABLE votes ADD COLUMN p_tie DOUBLE;

-- `warriorflow judges calibrate`: one row per judge (and one for the panel) per calibration run.
CREATE TABLE judge_calibrations (
    calibration_id  VARCHAR NOT NULL,        -- hash of the pairs file, the judges and the rule
    judge           VARCHAR NOT NULL,        -- an expert, 'execution', or 'panel'
    pairs           INTEGER NOT NULL,
    accuracy        DOUBLE,
    tie_rate        DOUBLE,
    flip_rate       DOUBLE,                  -- share of pairs whose two shown orders disagree
    first_position_share DOUBLE,             -- share of decisive one-order verdicts for the first shown
    metrics         JSON NOT NULL,           -- everything the report shows (probabilistic share, prior, ...)
    pairs_source    VARCHAR NOT NULL,        -- the pairs file and its sha256
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (calibration_id, judge)
);

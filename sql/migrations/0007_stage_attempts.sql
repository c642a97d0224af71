-- Schema version 7: every attempt of a stage in a run is recorded. A rerun (a cleared Airflow task, a
-- retried CLI command) adds a row with the next attempt number; it never overwrites what an earlier
-- attempt counted.
CREATE TABLE stage_runs_v7 (
    run_id          VARCHAR NOT NULL,
    stage           VARCHAR NOT NULL,
    attempt         INTEGER NOT NULL,
    counts          JSON NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (run_id, stage, attempt)
);
INSERT INTO stage_runs_v7 SELECT run_id, stage, 1, counts, started_at, finished_at FROM stage_runs;
DROP TABLE stage_runs;
ALTER TABLE stage_runs_v7 RENAME TO stage_runs;

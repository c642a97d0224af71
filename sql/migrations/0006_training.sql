-- Schema version 6: dataset snapshots and training runs, with what they were made from.

-- A snapshot's identity is its content: the same examples and lineage give the same hash (and snapshot).
ALTER TABLE snapshots ADD COLUMN content_sha256 VARCHAR;
ALTER TABLE snapshots ADD COLUMN n_battles INTEGER;
ALTER TABLE snapshots ADD COLUMN warriorflow_version VARCHAR;

-- A training run's id is derived from (snapshot_id, training_config_hash): rerunning is the same run.
ALTER TABLE training_runs ADD COLUMN training_config_hash VARCHAR;
ALTER TABLE training_runs ADD COLUMN global_step INTEGER;
ALTER TABLE training_runs ADD COLUMN segments JSON;      -- [{from_step, to_step}] per process: resumes after a kill
ALTER TABLE training_runs ADD COLUMN error VARCHAR;      -- why a failed run failed

-- The snapshot's content, streamed (store/snapshots.py create_snapshot). _wf_snap_gold: the gold instructions (the
-- sft view's). _wf_snap_scored: every scored response of them, with the gold's rating version's scores (the
-- snapshot_responses query, restricted to the gold instructions, unordered).
CREATE OR REPLACE TEMP TABLE _wf_snap_gold AS SELECT DISTINCT instruction_id FROM sft;

CREATE OR REPLACE TEMP TABLE _wf_snap_scored AS
SELECT s.instruction_id, i.text AS instruction, s.response_id, s.expert, r.text AS response,
       s.final_score, s.elo_expectation, s.local_score, s.n_battles, s.rating_version,
       s.response_id = g.response_id AS is_gold
FROM response_scores s
JOIN gold_selections g ON g.instruction_id = s.instruction_id AND g.rating_version = s.rating_version
JOIN instructions i ON i.instruction_id = s.instruction_id
JOIN responses r ON r.response_id = s.response_id
WHERE s.instruction_id IN (SELECT instruction_id FROM _wf_snap_gold);

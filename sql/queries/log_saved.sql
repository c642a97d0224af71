-- A saved vote log (rating_logs, rating_log_battles) as the temporary tables open_log builds, as far as the gold
-- step reads them (store/vote_log.py open_saved_log): the battles with their competitors and responses, the experts,
-- the per-battle tallies.
CREATE OR REPLACE TEMP TABLE _wf_log_battles AS
SELECT l.pos, b.battle_id, b.instruction_id, b.attacker, b.defender, b.attacker_response_id, b.defender_response_id
FROM rating_log_battles l JOIN battles b USING (battle_id)
WHERE l.rating_version = $version
ORDER BY l.pos;

CREATE OR REPLACE TEMP TABLE _wf_log_experts AS
SELECT unnest(experts) AS name, (generate_subscripts(experts, 1) - 1)::INTEGER AS idx
FROM rating_logs WHERE rating_version = $version;

CREATE OR REPLACE TEMP TABLE _wf_log_results AS
SELECT l.pos, b.battle_id, b.instruction_id, l.a, l.d, l.t_a, l.t_b
FROM rating_log_battles l JOIN _wf_log_battles b USING (pos)
WHERE l.rating_version = $version
ORDER BY l.pos;

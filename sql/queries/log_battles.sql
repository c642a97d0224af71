-- The vote log's battles (store/vote_log.py open_log): every completed battle in recorded order, pos = its
-- place in the Elo fold (0, 1, ...), with the two competitors' indices into the log's experts (sorted names).
CREATE OR REPLACE TEMP TABLE _wf_log_battles AS
SELECT (row_number() OVER (ORDER BY battle_order, battle_id) - 1)::BIGINT AS pos,
       battle_id, instruction_id, attacker, defender, attacker_response_id, defender_response_id
FROM battles
WHERE status = 'done';

CREATE OR REPLACE TEMP TABLE _wf_log_experts AS
SELECT name, (row_number() OVER (ORDER BY name) - 1)::INTEGER AS idx
FROM (SELECT attacker AS name FROM _wf_log_battles UNION SELECT defender FROM _wf_log_battles);

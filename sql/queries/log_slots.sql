-- Every (instruction, expert) pair of the vote log that fought on the instruction: one response to score
-- (store/vote_log.py Log.slots). slot numbers them in (instruction_id, expert) order, ins numbers the
-- instructions, e is the expert's index into the log's experts.
CREATE OR REPLACE TEMP TABLE _wf_log_slots AS
SELECT p.instruction_id, p.expert, e.idx AS e,
       (row_number() OVER (ORDER BY p.instruction_id, p.expert) - 1)::BIGINT AS slot,
       (dense_rank() OVER (ORDER BY p.instruction_id) - 1)::BIGINT AS ins
FROM (SELECT instruction_id, attacker AS expert FROM _wf_log_battles
      UNION SELECT instruction_id, defender FROM _wf_log_battles) p
JOIN _wf_log_experts e ON e.name = p.expert;

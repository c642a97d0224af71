-- One row per battle of the vote log (store/vote_log.py open_log), in pos order: the competitors' indices and what
-- its vote pattern (_wf_log_patterns) means, computed in Python per distinct pattern with method/rating.py
-- (_wf_log_meanings): the weighted tallies t_a, t_b (rating._tally, in its order), the result s
-- (rating.battle_result), the invalid votes, whether an execution vote counted, and the JSON of its votes and
-- weights. tail and q_battle make the battle's element of the rating version,
-- json.dumps([battle_id, attacker, defender, votes, (weights)], sort_keys=True); q_battle is NULL when the
-- battle id is not plain printable ASCII (then Python quotes it).
CREATE OR REPLACE TEMP TABLE _wf_log_results AS
SELECT b.pos, b.battle_id, b.instruction_id, ea.idx AS a, ed.idx AS d, m.t_a, m.t_b, m.s, m.n_invalid,
       m.has_execution,
       CASE WHEN regexp_full_match(b.battle_id, '[ -~]*')
            THEN '["' || replace(replace(b.battle_id, '\', '\\'), '"', '\"') || '"' END AS q_battle,
       ', ' || ea.q || ', ' || ed.q || ', ' || m.votes_json
           || CASE WHEN m.weights_json IS NOT NULL THEN ', ' || m.weights_json ELSE '' END || ']' AS tail
FROM _wf_log_battles b
JOIN _wf_log_experts ea ON ea.name = b.attacker
JOIN _wf_log_experts ed ON ed.name = b.defender
LEFT JOIN _wf_log_patterns p USING (pos)
JOIN _wf_log_meanings m ON m.pattern = coalesce(p.pattern, 0);

-- One row per battle of the vote log (store/vote_log.py open_log), in pos order: the competitors' indices, the
-- weighted tallies t_a, t_b summed in the order the BattleVotes mapping holds the votes (rating._tally), the
-- result s (rating.battle_result), the invalid votes, whether an execution vote counted, and the battle's
-- element of the rating version: json.dumps([battle_id, attacker, defender, votes, (weights)], sort_keys=True)
-- with names quoted by Python (_wf_log_names); NULL when the battle id is not plain printable ASCII (then
-- Python writes the element).
CREATE OR REPLACE TEMP TABLE _wf_log_results AS
WITH tallies AS (
    SELECT v.pos,
           list_sum(list(CASE WHEN v.verdict = 'attacker' THEN v.w ELSE 0.0 END ORDER BY v.jrank, v.judge)) AS t_a,
           list_sum(list(CASE WHEN v.verdict = 'defender' THEN v.w ELSE 0.0 END ORDER BY v.jrank, v.judge)) AS t_b,
           count(*) FILTER (WHERE v.verdict = 'invalid') AS n_invalid,
           bool_or(v.judge = 'execution') AS has_execution,
           string_agg(q.q || ': "' || v.verdict || '"', ', ' ORDER BY v.judge) AS votes_text,
           string_agg(q.q || ': ' || v.w_text, ', ' ORDER BY v.judge) FILTER (WHERE v.in_weights) AS weights_text
    FROM _wf_log_votes v JOIN _wf_log_names q ON q.name = v.judge
    GROUP BY v.pos
), scored AS (
    SELECT b.pos, b.battle_id, b.instruction_id, ea.idx AS a, ed.idx AS d,
           coalesce(t.t_a, 0.0) AS t_a, coalesce(t.t_b, 0.0) AS t_b,
           coalesce(t.n_invalid, 0) AS n_invalid, coalesce(t.has_execution, false) AS has_execution,
           t.votes_text, t.weights_text, qa.q AS qa, qd.q AS qd
    FROM _wf_log_battles b
    JOIN _wf_log_experts ea ON ea.name = b.attacker
    JOIN _wf_log_experts ed ON ed.name = b.defender
    JOIN _wf_log_names qa ON qa.name = b.attacker
    JOIN _wf_log_names qd ON qd.name = b.defender
    LEFT JOIN tallies t USING (pos)
)
SELECT pos, battle_id, instruction_id, a, d, t_a, t_b,
       CASE WHEN t_a > t_b THEN 1.0 WHEN t_a < t_b THEN 0.0 ELSE 0.5 END AS s,
       n_invalid, has_execution,
       CASE WHEN regexp_full_match(battle_id, '[ -~]*')
            THEN '["' || replace(replace(battle_id, '\', '\\'), '"', '\"') || '"' END AS q_battle,
       ', ' || qa || ', ' || qd || ', {' || coalesce(votes_text, '') || '}'
           || CASE WHEN weights_text IS NOT NULL THEN ', {' || weights_text || '}' ELSE '' END || ']' AS tail
FROM scored;

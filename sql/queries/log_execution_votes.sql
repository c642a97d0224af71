-- The deterministic execution vote (method/execution.py execution_vote, in SQL) of every battle of the vote log
-- with both roles executed, added as judge 'execution' where no judge of that name voted
-- (store/vote_log.py open_log; arena.execution.vote). $w is its weight, $in_weights whether the battle's
-- BattleVotes carries it (a weight other than 1), $w_text its JSON text.
INSERT INTO _wf_log_votes
WITH pairs AS (
    SELECT b.pos, a.code_task AND d.code_task AS code_task, a.has_code AS a_code, d.has_code AS d_code,
           a.status AS a_status, d.status AS d_status, a.status = 'ok' AS a_ok, d.status = 'ok' AS d_ok,
           a.instruction_passed AS a_inst, d.instruction_passed AS d_inst,
           a.tests_passed AS a_all, d.tests_passed AS d_all
    FROM _wf_log_battles b
    JOIN executions a ON a.battle_id = b.battle_id AND a.role = 'attacker'
    JOIN executions d ON d.battle_id = b.battle_id AND d.role = 'defender'
), decided AS (
    SELECT pos, CASE
        WHEN NOT code_task THEN NULL
        WHEN NOT (a_code OR d_code) THEN NULL
        WHEN 'sandbox_error' IN (a_status, d_status) THEN NULL
        WHEN a_code <> d_code THEN (CASE WHEN a_code AND a_ok THEN 'attacker' WHEN d_code AND d_ok THEN 'defender' END)
        WHEN a_ok <> d_ok THEN (CASE WHEN a_ok THEN 'attacker' ELSE 'defender' END)
        WHEN NOT a_ok THEN NULL
        WHEN a_inst <> d_inst THEN (CASE WHEN a_inst > d_inst THEN 'attacker' ELSE 'defender' END)
        WHEN a_all <> d_all THEN (CASE WHEN a_all > d_all THEN 'attacker' ELSE 'defender' END)
        END AS verdict
    FROM pairs
)
SELECT pos, 'execution' AS judge, 1 AS jrank, verdict, $w::DOUBLE AS w, $in_weights AS in_weights, $w_text AS w_text
FROM decided
WHERE verdict IS NOT NULL
  AND pos NOT IN (SELECT pos FROM _wf_log_votes WHERE judge = 'execution');

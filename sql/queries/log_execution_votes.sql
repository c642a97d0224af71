-- The deterministic execution vote (method/execution.py execution_vote, in SQL) of every battle of the vote log
-- with both roles executed, added as judge 'execution' where no judge of that name voted
-- (store/vote_log.py open_log; arena.execution.vote): jrank 1, $k the place of 'execution' among the sorted
-- judge names; code 1 attacker, 2 defender.
INSERT INTO _wf_log_votes
WITH roles AS (
    SELECT battle_id,
           count(*) FILTER (WHERE role = 'attacker') AS n_a, count(*) FILTER (WHERE role = 'defender') AS n_d,
           bool_or(code_task) FILTER (WHERE role = 'attacker') AS a_task,
           bool_or(code_task) FILTER (WHERE role = 'defender') AS d_task,
           bool_or(has_code) FILTER (WHERE role = 'attacker') AS a_code,
           bool_or(has_code) FILTER (WHERE role = 'defender') AS d_code,
           max(status) FILTER (WHERE role = 'attacker') AS a_status,
           max(status) FILTER (WHERE role = 'defender') AS d_status,
           max(instruction_passed) FILTER (WHERE role = 'attacker') AS a_inst,
           max(instruction_passed) FILTER (WHERE role = 'defender') AS d_inst,
           max(tests_passed) FILTER (WHERE role = 'attacker') AS a_all,
           max(tests_passed) FILTER (WHERE role = 'defender') AS d_all
    FROM executions GROUP BY battle_id
), pairs AS (
    SELECT b.pos, a_task AND d_task AS code_task, a_code, d_code, a_status, d_status,
           a_status = 'ok' AS a_ok, d_status = 'ok' AS d_ok, a_inst, d_inst, a_all, d_all
    FROM roles JOIN _wf_log_battles b USING (battle_id)
    WHERE n_a = 1 AND n_d = 1
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
SELECT pos, $k AS k, 1::TINYINT AS jrank, (CASE verdict WHEN 'attacker' THEN 1 ELSE 2 END)::TINYINT AS code
FROM decided
WHERE verdict IS NOT NULL
  AND pos NOT IN (SELECT pos FROM _wf_log_votes WHERE k = $k);

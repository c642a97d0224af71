-- What the vote log is built from, summarised (store/vote_log.py log_fingerprint): per table the row count and the
-- sum of a hash of the columns the log reads. Any change to those rows changes it (with overwhelming probability).
SELECT (SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(battle_id, judge, verdict, shown_order, p_a, p_b, p_tie)),
                                                    0)::VARCHAR FROM votes)
    || '|' || (SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(battle_id, instruction_id, attacker, defender,
                                                                      status, battle_order)), 0)::VARCHAR FROM battles)
    || '|' || (SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(battle_id, role, code_task, has_code, status,
                                                                      tests_passed, instruction_passed)), 0)::VARCHAR
               FROM executions)
    || '|' || (SELECT count(*)::VARCHAR || ':' || coalesce(sum(hash(calibration_id, judge, accuracy, created_at)),
                                                            0)::VARCHAR FROM judge_calibrations) AS inputs

-- Every scored response of the gold instructions with the stored votes of the completed battles it fought on its
-- instruction (its role there and its opponent), by instruction and expert (store/snapshots.py response_records).
WITH sides AS (
    SELECT b.instruction_id, b.attacker AS expert, 'attacker' AS role, b.defender AS opponent, v.*
    FROM votes v JOIN battles b USING (battle_id)
    WHERE b.status = 'done' AND b.instruction_id IN (SELECT instruction_id FROM _wf_snap_gold)
    UNION ALL
    SELECT b.instruction_id, b.defender, 'defender', b.attacker, v.*
    FROM votes v JOIN battles b USING (battle_id)
    WHERE b.status = 'done' AND b.instruction_id IN (SELECT instruction_id FROM _wf_snap_gold)
), per AS (
    SELECT instruction_id, expert,
           list({'battle_id': battle_id, 'opponent': opponent, 'role': role, 'judge': judge,
                 'shown_order': shown_order, 'verdict': verdict, 'p_a': p_a, 'p_b': p_b, 'p_tie': p_tie}
                ORDER BY battle_id, judge, shown_order) AS votes
    FROM sides GROUP BY instruction_id, expert
)
SELECT s.*, p.votes
FROM _wf_snap_scored s LEFT JOIN per p USING (instruction_id, expert)
ORDER BY s.instruction_id, s.expert

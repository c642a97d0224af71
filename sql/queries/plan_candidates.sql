-- The selected instructions that may miss a battle (stages/plan.py existing_battles), in instruction_id order:
-- those with no battle at all (the anti-join), and those with battles planned before some expert joined (the
-- planner's newcomer rule decides which expert fights there), each with its attacker, defenders and the time
-- its first battle was planned. $where: the selection window (the plan stage's condition on i and s).
WITH planned AS (
    SELECT instruction_id, min(attacker) AS attacker, list(DISTINCT defender ORDER BY defender) AS defenders,
           min(planned_at) AS first_planned_at
    FROM battles GROUP BY instruction_id
)
SELECT i.instruction_id, i.text, i.expert, p.attacker, p.defenders, p.first_planned_at
FROM instructions i
JOIN instruction_selections s USING (instruction_id)
LEFT JOIN planned p USING (instruction_id)
WHERE ($where)
  AND (p.instruction_id IS NULL
       OR EXISTS (SELECT 1 FROM experts e WHERE e.first_seen_at > p.first_planned_at))
ORDER BY i.instruction_id

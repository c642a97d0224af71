-- The stored votes of every completed battle of the gold instructions, with the battle's competitors
-- (the snapshot's responses dataset: each response carries the votes of its battles).
SELECT v.battle_id, b.instruction_id, b.attacker, b.defender, v.judge, v.shown_order, v.verdict,
       v.p_a, v.p_b, v.p_tie
FROM votes v JOIN battles b USING (battle_id)
WHERE b.status = 'done' AND b.instruction_id IN (SELECT instruction_id FROM gold_selections)
ORDER BY v.battle_id, v.judge, v.shown_order

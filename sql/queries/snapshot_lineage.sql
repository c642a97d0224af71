-- Every completed battle of the gold instructions with all its stored votes (the snapshot's lineage), in the
-- recorded battle order (store/snapshots.py battle_lineage's order).
SELECT b.battle_id, b.instruction_id, b.attacker, b.defender, b.battle_order,
       list({'judge': v.judge, 'shown_order': v.shown_order, 'verdict': v.verdict} ORDER BY v.judge, v.shown_order)
           FILTER (WHERE v.vote_id IS NOT NULL) AS votes
FROM battles b
LEFT JOIN votes v USING (battle_id)
WHERE b.status = 'done' AND b.instruction_id IN (SELECT instruction_id FROM _wf_snap_gold)
GROUP BY b.battle_id, b.instruction_id, b.attacker, b.defender, b.battle_order
ORDER BY b.battle_order IS NULL, coalesce(b.battle_order, 0), b.battle_id

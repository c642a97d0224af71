-- The gold SFT examples of the instructions in [$lo, $hi] with their lineage ids, by instruction: the sft view's
-- rows and columns (store/snapshots.py example_records), its battle ids read from the staged battles of the range
-- (in battle order) instead of a correlated list over every battle.
WITH ids AS (
    SELECT instruction_id, list(battle_id ORDER BY battle_order, battle_id) AS battle_ids
    FROM _wf_snap_battles WHERE instruction_id BETWEEN $lo AND $hi GROUP BY instruction_id
)
SELECT g.instruction_id, i.text AS instruction, r.text AS response, g.response_id, g.expert AS response_expert,
       i.expert AS miner, g.final_score, g.rating_version, i.difficulty, ids.battle_ids, g.selected_at
FROM gold_selections g
JOIN instructions i USING (instruction_id)
JOIN responses r ON r.response_id = g.response_id
LEFT JOIN ids USING (instruction_id)
WHERE g.instruction_id BETWEEN $lo AND $hi
ORDER BY g.instruction_id

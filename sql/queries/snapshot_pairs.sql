-- The completed battles of the gold instructions in [$lo, $hi] with their two scored responses (NULL where one has
-- no score), by instruction and battle id (store/snapshots.py preference_records' order).
SELECT b.battle_id, b.instruction_id, b.attacker, b.defender,
       a.instruction AS a_instruction, a.response_id AS a_response_id, a.response AS a_response,
       a.final_score AS a_final_score, a.rating_version AS a_rating_version,
       d.instruction AS d_instruction, d.response_id AS d_response_id, d.response AS d_response,
       d.final_score AS d_final_score, d.rating_version AS d_rating_version
FROM _wf_snap_battles b
LEFT JOIN _wf_snap_scored a ON a.instruction_id = b.instruction_id AND a.expert = b.attacker
LEFT JOIN _wf_snap_scored d ON d.instruction_id = b.instruction_id AND d.expert = b.defender
WHERE b.instruction_id BETWEEN $lo AND $hi
ORDER BY b.instruction_id, b.battle_id

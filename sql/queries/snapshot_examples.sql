-- The gold SFT examples of the instructions in [$lo, $hi] with their lineage ids, by instruction (the sft view;
-- store/snapshots.py example_records).
SELECT instruction_id, instruction, response, response_id, response_expert, miner, final_score, rating_version,
       difficulty, battle_ids, selected_at
FROM sft WHERE instruction_id BETWEEN $lo AND $hi ORDER BY instruction_id

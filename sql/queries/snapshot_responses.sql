-- Every scored response of the gold instructions, with the scores of the gold's own rating version (the
-- snapshot's responses and preferences datasets; response_scores is written by the gold step).
SELECT s.instruction_id, i.text AS instruction, s.response_id, s.expert, r.text AS response,
       s.final_score, s.elo_expectation, s.local_score, s.n_battles, s.rating_version,
       s.response_id = g.response_id AS is_gold
FROM response_scores s
JOIN gold_selections g ON g.instruction_id = s.instruction_id AND g.rating_version = s.rating_version
JOIN instructions i ON i.instruction_id = s.instruction_id
JOIN responses r ON r.response_id = s.response_id
ORDER BY s.instruction_id, s.expert

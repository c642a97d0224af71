-- The two response ids of every fought battle (style-controlled ratings, stages/rate.py).
SELECT battle_id, attacker_response_id, defender_response_id FROM battles
WHERE status = 'done' AND attacker_response_id IS NOT NULL AND defender_response_id IS NOT NULL
ORDER BY battle_id

-- The texts of the responses that fought a completed battle and have no style counts of the current algorithm
-- (the parameter) yet (stages/rate.py: computed once per response).
SELECT r.response_id, r.text FROM responses r
WHERE r.response_id IN (SELECT attacker_response_id FROM battles WHERE status = 'done'
                        UNION SELECT defender_response_id FROM battles WHERE status = 'done')
  AND r.response_id NOT IN (SELECT response_id FROM response_style WHERE algorithm = ?)

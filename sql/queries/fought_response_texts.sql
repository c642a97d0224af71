-- The texts of the responses that fought a battle, one page at a time in response_id order:
-- the ids after the first parameter, at most the second parameter of them (stages/rate.py).
SELECT response_id, text FROM responses
WHERE response_id IN (SELECT attacker_response_id FROM battles WHERE status = 'done'
                      UNION SELECT defender_response_id FROM battles WHERE status = 'done')
  AND response_id > ?
ORDER BY response_id
LIMIT ?

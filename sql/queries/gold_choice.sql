-- The gold step's choice (stages/gold.py), over the scores summed in Python (_wf_scores_src: slot, final_score,
-- elo_expectation, local_score, n_battles) and the vote log's slots (_wf_log_slots).
-- _wf_scored: every scored response with its stored response (the one that fought a completed battle on the
-- instruction, else any stored by that expert on it) and the length of its text.
-- _wf_gold: per instruction the highest final score; scores within $eps of it tie, a tie goes to the shorter
-- response (one without a stored response ranks after those with one), then to the first expert name
-- (method/rating.py select_gold).
CREATE OR REPLACE TEMP TABLE _wf_scored AS
WITH fought AS (
    SELECT instruction_id, attacker AS expert, max(attacker_response_id) AS response_id FROM _wf_log_battles
    WHERE attacker_response_id IS NOT NULL GROUP BY ALL
    UNION ALL
    SELECT instruction_id, defender, max(defender_response_id) FROM _wf_log_battles
    WHERE defender_response_id IS NOT NULL GROUP BY ALL
), fought_stored AS (
    SELECT f.instruction_id, f.expert, max(f.response_id) AS response_id
    FROM fought f JOIN responses r ON r.response_id = f.response_id GROUP BY ALL
), any_stored AS (
    SELECT instruction_id, expert, min(response_id) AS response_id FROM responses
    WHERE instruction_id IN (SELECT instruction_id FROM _wf_log_battles) GROUP BY ALL
), chosen AS (
    SELECT s.slot, coalesce(f.response_id, a.response_id) AS response_id
    FROM _wf_log_slots s
    LEFT JOIN fought_stored f ON f.instruction_id = s.instruction_id AND f.expert = s.expert
    LEFT JOIN any_stored a ON a.instruction_id = s.instruction_id AND a.expert = s.expert
)
SELECT s.slot, s.ins, s.instruction_id, s.expert, c.response_id, length(r.text) AS n_chars,
       x.final_score, x.elo_expectation, x.local_score, x.n_battles
FROM _wf_log_slots s
JOIN _wf_scores_src x USING (slot)
JOIN chosen c USING (slot)
LEFT JOIN responses r ON r.response_id = c.response_id;

CREATE OR REPLACE TEMP TABLE _wf_gold AS
SELECT slot, instruction_id, expert, response_id, final_score
FROM (SELECT *, row_number() OVER (PARTITION BY ins ORDER BY coalesce(n_chars::DOUBLE, 'inf'::DOUBLE), expert) AS rank
      FROM (SELECT *, max(final_score) OVER (PARTITION BY ins) AS best FROM _wf_scored)
      WHERE final_score >= best - $eps)
WHERE rank = 1;

-- Each battle's vote pattern (store/vote_log.py open_log): which judge slot voted what, as one number. A slot is a
-- judge name's place in Python's sorted order (k = 1..K) or, for the added execution vote, K + 1; a verdict's
-- code is attacker 1, defender 2, tie 3, invalid 4; the pattern is the sum of code * 5^(slot - 1) (exact in
-- DECIMAL(38,0), so up to 53 judge names; _wf_log_slot_base holds 5^(slot - 1)). Python derives everything a
-- pattern means once per distinct pattern, with the method's own functions.
CREATE OR REPLACE TEMP TABLE _wf_log_patterns AS
SELECT v.pos,
       sum(v.code * m.base) AS pattern
FROM _wf_log_votes v
JOIN _wf_log_slot_base m ON m.slot = CASE WHEN v.jrank = 1 THEN $n_names + 1 ELSE v.k END
GROUP BY v.pos;

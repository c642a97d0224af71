-- Schema version 10: promotion by evidence. A decision records the paired significance test that made it
-- (evaluation.promotion.test), its statistic and one-sided p-value, and the whole evidence: the problems
-- paired per benchmark, McNemar's discordant counts (b, c) or the bootstrap CI, the per-benchmark deltas and
-- each guarded benchmark's regression test. decision_id hashes the evidence too, so new evidence is a new row.
ALTER TABLE model_promotions ADD COLUMN test VARCHAR;        -- mcnemar | bootstrap; NULL: nothing compared
ALTER TABLE model_promotions ADD COLUMN statistic DOUBLE;    -- mcnemar: b (candidate-only passes); bootstrap: mean delta
ALTER TABLE model_promotions ADD COLUMN p_value DOUBLE;      -- one-sided p for "candidate better" (pooled)
ALTER TABLE model_promotions ADD COLUMN evidence JSON;       -- see evaluation/compare.py Decision.evidence

-- The retrain gate's n: gold examples selected (or whose winner changed) since the latest snapshot.
SELECT count(*) AS n FROM gold_selections
WHERE selected_at > coalesce((SELECT max(created_at) FROM snapshots), TIMESTAMP '1970-01-01')

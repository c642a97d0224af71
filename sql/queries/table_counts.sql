-- Row counts of the main tables (doctor and status pages).
SELECT 'experts' AS table_name, count(*) AS n FROM experts
UNION ALL SELECT 'instructions', count(*) FROM instructions
UNION ALL SELECT 'responses', count(*) FROM responses
UNION ALL SELECT 'battles', count(*) FROM battles
UNION ALL SELECT 'votes', count(*) FROM votes
UNION ALL SELECT 'gold_selections', count(*) FROM gold_selections
UNION ALL SELECT 'snapshots', count(*) FROM snapshots;

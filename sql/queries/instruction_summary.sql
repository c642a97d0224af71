-- `warriorflow instructions`: where every mined instruction stands.
SELECT expert, status, count(*) AS n FROM instructions GROUP BY ALL ORDER BY expert, status;

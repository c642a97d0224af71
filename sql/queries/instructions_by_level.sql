-- Median judge score by rubric level: excellent 9-10, good 6-8, average 3-5, poor 1-2.
SELECT CASE WHEN difficulty IS NULL THEN 'unscored'
            WHEN difficulty >= 9 THEN 'excellent'
            WHEN difficulty >= 6 THEN 'good'
            WHEN difficulty >= 3 THEN 'average'
            ELSE 'poor' END AS level,
       count(*) AS n
FROM instructions GROUP BY ALL ORDER BY min(coalesce(difficulty, -1)) DESC;

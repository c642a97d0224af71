SELECT expert, temperature, top_p, count(*) AS mined,
       count(*) FILTER (WHERE status = 'selected') AS selected
FROM instructions GROUP BY ALL ORDER BY expert, temperature, top_p;

SELECT stage, reason, count(*) AS n FROM dropped_records GROUP BY ALL ORDER BY stage, n DESC;

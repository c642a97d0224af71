-- Instructions by miner and status.
SELECT expert, status, count(*) AS n
FROM instructions
GROUP BY ALL
ORDER BY expert, status;

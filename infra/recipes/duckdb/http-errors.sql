-- HTTP errors: exchanges answered 4xx/5xx, per server and status, the most
-- frequent first.
SELECT server_name, server_ip, status, count(*) AS exchanges
FROM read_parquet('flowlake-data/lake/http/*/*/*.parquet', hive_partitioning = true)
WHERE status >= 400
GROUP BY server_name, server_ip, status
ORDER BY exchanges DESC, server_ip, status;

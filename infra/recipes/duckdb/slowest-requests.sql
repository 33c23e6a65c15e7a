-- The ten slowest complete exchanges, with what was asked.
SELECT ts, client_ip, server_name, server_ip, method, path, status, duration_us
FROM read_parquet('flowlake-data/lake/http/*/*/*.parquet', hive_partitioning = true)
WHERE complete AND status > 0
ORDER BY duration_us DESC, id
LIMIT 10;

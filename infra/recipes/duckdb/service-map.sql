-- The service map: who calls whom over HTTP, how often, how many errors,
-- the slowest answer.
SELECT client_ip, server_ip, server_port,
       count(*) AS requests,
       count(*) FILTER (WHERE status >= 500 OR status = 0) AS failures,
       max(duration_us) AS max_duration_us
FROM read_parquet('flowlake-data/lake/http/*/*/*.parquet', hive_partitioning = true)
GROUP BY client_ip, server_ip, server_port
ORDER BY requests DESC, client_ip, server_ip, server_port;

-- Capture and network quality per server: connections that lost bytes
-- (missing_bytes: the capture missed data) or retransmitted.
SELECT server_ip, server_port,
       count(*) AS connections,
       sum(missing_bytes) AS missing_bytes,
       sum(retransmissions) AS retransmissions
FROM read_parquet('flowlake-data/lake/tcp/*/*/*.parquet', hive_partitioning = true)
WHERE missing_bytes > 0 OR retransmissions > 0
GROUP BY server_ip, server_port
ORDER BY connections DESC, server_ip, server_port;

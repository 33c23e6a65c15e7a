-- TLS handshakes per negotiated version, with the number of server names.
SELECT version, count(*) AS handshakes, count(DISTINCT sni) AS server_names
FROM read_parquet('flowlake-data/lake/tls/*/*/*.parquet', hive_partitioning = true)
GROUP BY version
ORDER BY handshakes DESC, version;

-- Requests per hour partition of one day. The dt and hour filters prune
-- partitions: DuckDB reads only the files below lake/http/dt=2024-01-01/.
SELECT dt, hour, count(*) AS requests
FROM read_parquet('flowlake-data/lake/http/*/*/*.parquet', hive_partitioning = true,
                  hive_types = {'dt': DATE, 'hour': INTEGER})
WHERE dt = DATE '2024-01-01'
GROUP BY dt, hour
ORDER BY dt, hour;

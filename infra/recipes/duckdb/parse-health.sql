-- Parse health per agent and stream: segments, gaps, errors, traffic.
SELECT agent, stream,
       count(*) AS segments,
       count(*) FILTER (WHERE gap) AS gaps,
       count(*) FILTER (WHERE status = 'error') AS errors,
       sum(packets) AS packets,
       sum(bytes) AS bytes
FROM read_parquet('flowlake-data/lake/parse_status/*/*/*.parquet', hive_partitioning = true)
GROUP BY agent, stream
ORDER BY agent, stream;

-- DNS queries that failed or were never answered.
SELECT query, qtype, CASE WHEN responded THEN rcode ELSE 'no answer' END AS outcome, count(*) AS queries
FROM read_parquet('flowlake-data/lake/dns/*/*/*.parquet', hive_partitioning = true)
WHERE NOT responded OR rcode <> 'NOERROR'
GROUP BY ALL
ORDER BY queries DESC, query, qtype, outcome;

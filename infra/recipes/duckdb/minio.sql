-- The lake in MinIO through DuckDB's httpfs extension, with the query
-- user's credentials (it may read lake/ and config/: policy
-- infra/terraform/policies/query.json). For AWS S3 leave out ENDPOINT,
-- URL_STYLE and USE_SSL, or use PROVIDER credential_chain.
INSTALL httpfs;
LOAD httpfs;
CREATE OR REPLACE SECRET flowlake_minio (
    TYPE S3,
    KEY_ID 'flowlake-query',
    SECRET 'the-query-user-secret',
    REGION 'us-east-1',
    ENDPOINT '127.0.0.1:9000',
    URL_STYLE 'path',
    USE_SSL false
);
SELECT server_name, server_ip, status, count(*) AS exchanges
FROM read_parquet('s3://flowlake/lake/http/*/*/*.parquet', hive_partitioning = true)
WHERE status >= 400
GROUP BY server_name, server_ip, status
ORDER BY exchanges DESC, server_ip, status;

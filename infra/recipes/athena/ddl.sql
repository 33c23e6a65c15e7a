-- Generated from schema.AthenaDDL by `go test ./infra/recipes -update`. DO NOT EDIT.
-- The same tables as the Glue tables of infra/terraform/modules/aws, for Athena
-- without Terraform: replace YOUR-BUCKET, run each statement in a database.
CREATE EXTERNAL TABLE IF NOT EXISTS `http` (
  `id` string,
  `ts` timestamp,
  `ts_end` timestamp,
  `duration_us` bigint,
  `agent` string,
  `client_ip` string,
  `client_port` int,
  `server_ip` string,
  `server_port` int,
  `client_name` string,
  `server_name` string,
  `tcp_id` string,
  `seq` int,
  `method` string,
  `uri` string,
  `host` string,
  `path` string,
  `query` string,
  `version` string,
  `status` int,
  `reason` string,
  `req_headers` string,
  `resp_headers` string,
  `req_body_bytes` bigint,
  `resp_body_bytes` bigint,
  `req_body` string,
  `resp_body` string,
  `content_type` string,
  `user_agent` string,
  `tls` boolean,
  `complete` boolean,
  `error` string,
  `community_id` string
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/http/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/http/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

CREATE EXTERNAL TABLE IF NOT EXISTS `tcp` (
  `id` string,
  `ts` timestamp,
  `ts_end` timestamp,
  `duration_us` bigint,
  `agent` string,
  `client_ip` string,
  `client_port` int,
  `server_ip` string,
  `server_port` int,
  `client_name` string,
  `server_name` string,
  `packets_c2s` bigint,
  `packets_s2c` bigint,
  `bytes_c2s` bigint,
  `bytes_s2c` bigint,
  `missing_bytes` bigint,
  `retransmissions` bigint,
  `out_of_order` bigint,
  `rtt_us` bigint,
  `close` string,
  `saw_syn` boolean,
  `app_protocol` string,
  `http_exchanges` int,
  `limit_hits` int,
  `community_id` string,
  `segments` array<string>
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/tcp/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/tcp/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

CREATE EXTERNAL TABLE IF NOT EXISTS `dns` (
  `id` string,
  `ts` timestamp,
  `agent` string,
  `transport` string,
  `client_ip` string,
  `client_port` int,
  `server_ip` string,
  `server_port` int,
  `txid` int,
  `query` string,
  `qtype` string,
  `rcode` string,
  `answers` array<string>,
  `latency_us` bigint,
  `responded` boolean,
  `error` string
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/dns/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/dns/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

CREATE EXTERNAL TABLE IF NOT EXISTS `tls` (
  `ts` timestamp,
  `agent` string,
  `tcp_id` string,
  `client_ip` string,
  `client_port` int,
  `server_ip` string,
  `server_port` int,
  `version` string,
  `sni` string,
  `alpn` string,
  `cipher` string,
  `decrypted` boolean,
  `key_status` string,
  `error` string
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/tls/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/tls/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

CREATE EXTERNAL TABLE IF NOT EXISTS `parse_status` (
  `ts` timestamp,
  `ts_end` timestamp,
  `parsed_at` timestamp,
  `agent` string,
  `stream` int,
  `seq` bigint,
  `input` string,
  `packets` bigint,
  `bytes` bigint,
  `decoded` bigint,
  `decode_errors` bigint,
  `truncated` bigint,
  `tcp_conns` bigint,
  `http_exchanges` bigint,
  `http_errors` bigint,
  `dns_queries` bigint,
  `tls_handshakes` bigint,
  `missing_bytes` bigint,
  `limit_hits` bigint,
  `gap` boolean,
  `status` string,
  `error` string,
  `duration_us` bigint
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/parse_status/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/parse_status/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

CREATE EXTERNAL TABLE IF NOT EXISTS `capture_status` (
  `ts` timestamp,
  `agent` string,
  `stream` int,
  `interface` string,
  `captured` bigint,
  `filtered` bigint,
  `dropped` bigint,
  `overflow` bigint,
  `segments_uploaded` bigint,
  `bytes_uploaded` bigint,
  `spool_bytes` bigint,
  `errors` bigint
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/capture_status/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/capture_status/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

CREATE EXTERNAL TABLE IF NOT EXISTS `edges_1m` (
  `ts` timestamp,
  `agent` string,
  `protocol` string,
  `client_ip` string,
  `server_ip` string,
  `server_port` int,
  `client_name` string,
  `server_name` string,
  `tls` boolean,
  `count` bigint,
  `errors` bigint,
  `bytes` bigint,
  `duration_sum_us` bigint,
  `duration_max_us` bigint,
  `lat_hist` string
)
PARTITIONED BY (`dt` string, `hour` string)
STORED AS PARQUET
LOCATION 's3://YOUR-BUCKET/lake/edges_1m/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='2020-01-01,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'projection.hour.type'='integer',
  'projection.hour.range'='0,23',
  'projection.hour.digits'='2',
  'storage.location.template'='s3://YOUR-BUCKET/lake/edges_1m/dt=${dt}/hour=${hour}/',
  'flowlake.schema_version'='1'
);

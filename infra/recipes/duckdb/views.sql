-- Generated from schema.DuckDBViews by `go test ./infra/recipes -update`. DO NOT EDIT.
-- A view per lake table of ./flowlake-data (make demo); replace the path for another lake.
CREATE OR REPLACE VIEW http AS SELECT * FROM read_parquet('flowlake-data/lake/http/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);
CREATE OR REPLACE VIEW tcp AS SELECT * FROM read_parquet('flowlake-data/lake/tcp/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);
CREATE OR REPLACE VIEW dns AS SELECT * FROM read_parquet('flowlake-data/lake/dns/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);
CREATE OR REPLACE VIEW tls AS SELECT * FROM read_parquet('flowlake-data/lake/tls/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);
CREATE OR REPLACE VIEW parse_status AS SELECT * FROM read_parquet('flowlake-data/lake/parse_status/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);
CREATE OR REPLACE VIEW capture_status AS SELECT * FROM read_parquet('flowlake-data/lake/capture_status/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);
CREATE OR REPLACE VIEW edges_1m AS SELECT * FROM read_parquet('flowlake-data/lake/edges_1m/*/*/*.parquet', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, union_by_name=true);

// Package recipes holds the query recipes of the lake (README.md): DuckDB
// queries (duckdb/*.sql) for a local lake and for MinIO or S3, the Athena
// DDL and example queries (athena/*.sql). Its tests run every DuckDB
// recipe against a lake the pipeline makes and compare the results with
// the same questions answered in Go from the Parquet rows, run the Athena
// examples under DuckDB as a stand-in, and keep the generated recipes
// (views.sql, exact-read.sql, athena/ddl.sql) in step with schema/.
package recipes

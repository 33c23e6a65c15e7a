-- Generated from lake.DuckDBQuery by `go test ./infra/recipes -update`. DO NOT EDIT.
-- Every http row exactly once, also while `flowlake compact` replaces files
-- (it follows the partition manifests; see internal/compact/README.md).
WITH manifest AS (
  SELECT parse_dirpath(filename) AS dir, files, list_transform(replaces, r -> r.name) AS replaced
  FROM read_json('flowlake-data/lake/http/*/*/_manifest-*.json', filename = true, format = 'auto',
    columns = {version: 'UBIGINT', files: 'VARCHAR[]', replaces: 'STRUCT(name VARCHAR)[]'})
  QUALIFY row_number() OVER (PARTITION BY dir ORDER BY version DESC) = 1
)
SELECT t.* EXCLUDE (filename)
FROM read_parquet('flowlake-data/lake/http/*/*/*.parquet', hive_partitioning = true, hive_types = {'dt': DATE, 'hour': INTEGER},
  union_by_name = true, filename = true) AS t
LEFT JOIN manifest AS m ON m.dir = parse_dirpath(t.filename)
WHERE CASE WHEN starts_with(parse_filename(t.filename), 'compact-')
  THEN coalesce(list_contains(m.files, parse_filename(t.filename)), false)
  ELSE NOT coalesce(list_contains(m.replaced, parse_filename(t.filename)), false) END;

package lake

import (
	"fmt"
	"strings"

	"github.com/flowlake/flowlake/internal/keys"
)

// DuckDBQuery returns a DuckDB query of every row of one table of the lake
// at lakeRoot (a local path or an s3:// URL ending in /lake) that follows
// the reader protocol (see ReadPartition) instead of reading every file the
// glob matches: it reads each partition's current manifest with read_json
// and keeps a row only if its file is live. Unlike the plain glob of
// schema.Glob it is exact while a compaction's replaced files await
// deletion. Partition columns dt (DATE) and hour (INTEGER) come from the
// Hive paths, as in schema.DuckDBViews.
//
// DuckDB fails the query ("No files found") while the table has no
// manifest at all; the plain glob is exact then, as nothing was replaced.
// DuckDB lists the manifests and the data files separately, in either
// order; like every protocol reader, the query must end within the
// compaction grace period (a file deleted meanwhile fails the query, it is
// not skipped).
func DuckDBQuery(lakeRoot, table string) string {
	root := strings.TrimSuffix(strings.ReplaceAll(lakeRoot, "'", "''"), "/")
	dir := root + "/" + table + "/*/*/"
	return fmt.Sprintf(`WITH manifest AS (
  SELECT parse_dirpath(filename) AS dir, files, list_transform(replaces, r -> r.name) AS replaced
  FROM read_json('%[1]s%[2]s*%[3]s', filename = true, format = 'auto',
    columns = {version: 'UBIGINT', files: 'VARCHAR[]', replaces: 'STRUCT(name VARCHAR)[]'})
  QUALIFY row_number() OVER (PARTITION BY dir ORDER BY version DESC) = 1
)
SELECT t.* EXCLUDE (filename)
FROM read_parquet('%[1]s*%[4]s', hive_partitioning = true, hive_types = {'dt': DATE, 'hour': INTEGER},
  union_by_name = true, filename = true) AS t
LEFT JOIN manifest AS m ON m.dir = parse_dirpath(t.filename)
WHERE CASE WHEN starts_with(parse_filename(t.filename), '%[5]s')
  THEN coalesce(list_contains(m.files, parse_filename(t.filename)), false)
  ELSE NOT coalesce(list_contains(m.replaced, parse_filename(t.filename)), false) END`,
		dir, keys.ManifestPrefix, keys.ExtManifest, keys.ExtParquet, keys.CompactPrefix)
}

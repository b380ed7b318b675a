package postgres

import (
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/store/internal/batch"
)

// PoolMax is the size of db's connection pool, for tests.
func PoolMax(db *DB) int32 { return db.pool.Config().MaxConns }

// SchemaVersion is the schema version Open brings a database to.
var SchemaVersion = len(migrations)

// Schema is the text that builds, from nothing, a database of schema version
// v as that release did: migrations[:v] (the list is append-only, so they are
// its text verbatim) and the version row.
func Schema(v int) string {
	return "CREATE TABLE latchkey_schema (version INTEGER NOT NULL);\n" + strings.Join(migrations[:v], ";\n") +
		fmt.Sprintf(";\nINSERT INTO latchkey_schema (version) VALUES (%d);", v)
}

// Unbatched makes db write every rotation on its own (batches of one, as many
// at once as the pool has connections), the baseline of group commit.
func Unbatched(db *DB) {
	db.rotations.Close()
	db.rotations = batch.New(int(db.pool.Config().MaxConns), 1, batchTimeout, db.rotateBatch)
}

package postgres

// PoolMax is the size of db's connection pool, for tests.
func PoolMax(db *DB) int32 { return db.pool.Config().MaxConns }

// SchemaVersion is the schema version Open brings a database to.
var SchemaVersion = len(migrations)

package postgres

// PoolMax is the size of db's connection pool, for tests.
func PoolMax(db *DB) int32 { return db.pool.Config().MaxConns }

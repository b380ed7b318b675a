// Package faults fails the infrastructure under a running `latchkey serve`
// and checks what the clients see. Store failures under refresh load:
// PostgreSQL restarted (fast and immediate shutdown) and its connections
// terminated, Redis killed and restarted, a Redis Cluster master killed and
// its replica promoted, the SQLite file's disk full. Network faults between
// three nodes in network namespaces and their PostgreSQL: latency, loss, and
// a node cut off from the store.
//
// Every test starts its own PostgreSQL, Redis and Redis Cluster processes,
// mounts, namespaces and links, and removes them when it ends; none touches
// the shared services other tests use. The tests run only when
// LATCHKEY_TEST_FAULTS=1, as root, with PostgreSQL's and Redis's Debian
// binaries installed (.ci/run installs them).
package faults

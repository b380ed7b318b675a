// Package latchkey is session authentication for net/http applications: short-lived
// JWT access tokens that verify without a database, and opaque, rotating refresh
// tokens whose whole lineage is guarded against reuse.
//
// An application creates one [Auth] with [New], issues a token pair with
// [Auth.Login] once it has checked a user's credentials, verifies access tokens with
// [Auth.Verify] (or the httpauth middleware), and exchanges refresh tokens with
// [Auth.Refresh]. Every failure is an [*Error] whose Code is one of the public codes
// of the HTTP API.
package latchkey

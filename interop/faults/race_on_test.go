//go:build race

package faults_test

// raceBuild: the tests run under the race detector, so latchkey is built
// with it too and a data race on a failure path shows in its standard error.
const raceBuild = true

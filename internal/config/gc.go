package config

import "runtime/debug"

// TuneGC sets the server's garbage collection: less often than Go's default,
// since under ingest load the live heap is a few tens of MiB and collecting
// it took a sixth of the server's CPU (docs/benchmarks.md), and a large
// report allocates much that dies at once. A soft memory limit keeps the
// heap within bounds all the same. GOGC and GOMEMLIMIT, when set, decide.
func TuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(192 << 20)
	}
}

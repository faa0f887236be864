//go:build !linux

package queue

// Elsewhere the guard is off: free space is unknown, so nothing is refused.
func freeBytes(string) (int64, bool) { return 0, false }
func holey(string) (int64, bool)     { return 0, false }
func allocate(string, int64) error   { return nil }

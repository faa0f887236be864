//go:build race

package queue

// raceBuild: the race detector is on (see TestValueLogReclaimed).
const raceBuild = true

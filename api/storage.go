package api

import (
	"errors"

	"notifyrelay/oma"
	"notifyrelay/queue"
)

// StorageRetryAfter is the Retry-After (seconds) sent with a 507: how soon a
// producer may try again once the disk filled up.
const StorageRetryAfter = "10"

// storageFault turns a 5xx fault caused by a full disk (queue.ErrNoSpace) into
// 507 Insufficient Storage, so that every producer API answers it the same way
// (docs/api.md §8 "Disk full"); WriteError adds Retry-After. Nothing was written.
func storageFault(e *oma.RequestError) *oma.RequestError {
	if e.Status < 500 || !errors.Is(e, queue.ErrNoSpace) {
		return e
	}
	return (&oma.RequestError{Status: 507, MessageID: "SVC0001", Text: oma.TextSVC0001,
		Variables: []string{"insufficient storage on the server, retry later"}}).Because(e.Cause)
}

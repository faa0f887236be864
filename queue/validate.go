package queue

import "fmt"

const (
	// maxRecordKey keeps record keys well under Badger's 64 KiB key limit.
	maxRecordKey = 32 << 10
	// maxReason bounds Retry and DeadLetter reasons: the last error lives in the
	// destination's meta, which is read for every destination at open.
	maxReason = 4 << 10
)

func validateDest(dest string) error {
	switch {
	case dest == "":
		return ErrEmptyDest
	case len(dest) > MaxDestLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrDestTooLong, len(dest), MaxDestLen)
	}
	return nil
}

func validateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes, want 1 to %d", ErrBadID, len(id), MaxIDLen)
	}
	return nil
}

func validateEntry(e Entry) error {
	if err := validateDest(e.Dest); err != nil {
		return err
	}
	if err := validateID(e.ID); err != nil {
		return err
	}
	if len(e.Data) > MaxEntrySize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrEntryTooBig, len(e.Data), MaxEntrySize)
	}
	return nil
}

// validateWrite checks everything that does not need stored state, so that a bad
// Write is refused whole before it reaches the writer.
func validateWrite(w Write) error {
	for i, e := range w.Entries {
		if err := validateEntry(e); err != nil {
			return fmt.Errorf("entry %d of write: %w", i, err)
		}
	}
	if i, ok := duplicateID(w.Entries); ok {
		return fmt.Errorf("entry %d of write: id %q twice: %w", i, w.Entries[i].ID, ErrDuplicateID)
	}
	if err := validateRecords(w.Records); err != nil {
		return err
	}
	size := 0
	for _, e := range w.Entries {
		size += entrySize(e)
	}
	if size > MaxWriteSize {
		return fmt.Errorf("%w: the write's entries take %d bytes, at most %d in one atomic write",
			ErrEntryTooBig, size, MaxWriteSize)
	}
	return nil
}

func validateRecords(recs []Record) error {
	for i, r := range recs {
		if len(r.Key) == 0 {
			return fmt.Errorf("record %d of write: %w", i, ErrEmptyRecord)
		}
		if len(r.Key) > maxRecordKey {
			return fmt.Errorf("record %d of write: key of %d bytes, at most %d: %w",
				i, len(r.Key), maxRecordKey, ErrBadArguments)
		}
	}
	return nil
}

// duplicateID finds the first entry whose id an earlier one has. Small writes, the
// common case, are checked pairwise without allocating.
func duplicateID(es []Entry) (int, bool) {
	if len(es) <= 16 {
		for i := range es {
			for j := 0; j < i; j++ {
				if es[i].ID == es[j].ID {
					return i, true
				}
			}
		}
		return 0, false
	}
	ids := make(map[string]struct{}, len(es))
	for i, e := range es {
		if _, dup := ids[e.ID]; dup {
			return i, true
		}
		ids[e.ID] = struct{}{}
	}
	return 0, false
}

func truncate(reason string) string {
	if len(reason) > maxReason {
		return reason[:maxReason]
	}
	return reason
}

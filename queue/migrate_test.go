package queue

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// TestMigrateV1 writes a data directory in the first layout (one key per entry, v1
// metas) and opens it: every queued entry is there at its seq, with its id, data,
// enqueue time and the head's attempts; acknowledged ones are not; appends go on
// from the last seq; no key of the old layout is left.
func TestMigrateV1(t *testing.T) {
	dir := t.TempDir()
	at := time.Unix(1_700_000_000, 0)
	kv, err := openBadgerKV(dir, BadgerOptions{}.withDefaults(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	txn := kv.begin()
	set := func(k, v []byte) {
		if err := txn.set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	// "a": seqs 1–2 acknowledged (head 3), 3–5 queued, the head tried twice.
	set(metaKey("a"), v1Meta(3, 3, 2, "HTTP 503"))
	for seq := uint64(1); seq <= 5; seq++ {
		set(v1EntryKey("a", seq), v1Entry(at, fmt.Sprint("a", seq), fmt.Sprint("data", seq)))
	}
	// "b": drained; its seqs go on after 7.
	set(metaKey("b"), v1Meta(8, 8, 0, ""))
	set(recordKey([]byte("kept")), []byte("v"))
	if err := txn.commit(); err != nil {
		t.Fatal(err)
	}
	if err := kv.close(); err != nil {
		t.Fatal(err)
	}

	q := openBadgerT(t, dir)
	es := mustRead(t, q, "a", 0, 10)
	if got := seqsOf(es); got != "3:a3 4:a4 5:a5 " {
		t.Fatalf("a after migration: %s", got)
	}
	if string(es[1].Data) != "data4" || !es[0].Enqueued.Equal(at) || es[0].Attempts != 2 || es[0].LastError != "HTTP 503" {
		t.Fatalf("entry after migration: %+v", es[0])
	}
	if seqs := mustAppend(t, q, entry("a", "a6", "x"), entry("b", "b8", "y")); fmt.Sprint(seqs) != "[6 8]" {
		t.Fatalf("appends after migration got seqs %v", seqs)
	}
	if v, err := q.Get(ctxT(t), []byte("kept")); err != nil || string(v) != "v" {
		t.Fatalf("record: %q %v", v, err)
	}
	_ = q.kv.view(func(r kvReader) error {
		if r.hasFrom([]byte{nsV1}, []byte{nsV1}) {
			t.Error("entry keys of the first layout left")
		}
		return nil
	})
}

func v1Meta(head, next uint64, attempts int, lastError string) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint64(b, head)
	b = binary.BigEndian.AppendUint64(b, next)
	b = binary.AppendUvarint(b, uint64(attempts))
	return append(b, lastError...)
}

func v1EntryKey(dest string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(v1EntryPrefix(dest), seq)
}

func v1Entry(at time.Time, id, data string) []byte {
	b := appendTime([]byte{1}, at)
	b = appendString(b, id)
	return append(b, data...)
}

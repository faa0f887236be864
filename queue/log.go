package queue

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The log. Each Append becomes one log value holding all its entries (a very large
// Append, several), so a chat change of ten notifications costs storage one key, not
// ten. Values are encoded on the caller's goroutine; the writer only patches in the
// seqs it assigns (fixed 8-byte slots) and the log id goes in the key.
//
//	logVersion | enqueued:u64 | count:uvarint | count × (seq:u64 | dest | id | len) | data…
//
// with dest and id each a uvarint length and its bytes, len the uvarint length of
// the entry's data; the data of all entries follows the headers. Open reads only the
// headers (one page or two of a value that is memory-mapped), not the data.

// maxLogValue is the size at which an Append's entries go on in a further log value:
// a value must fit one value log file (64 MiB by default), with room to spare.
const maxLogValue = 8 << 20

// MaxWriteSize bounds the encoded size of one Write's entries (every engine): one
// atomic commit must fit in memory and in storage's transaction.
const MaxWriteSize = 64 << 20

// encodedLog is one log value being written, with its entries decoded in place (Data
// points into val) for the read cache.
type encodedLog struct {
	id      uint64 // set by the writer
	val     []byte
	seqAt   []int   // offset of each entry's seq slot in val
	entries []Entry // Seq set by the writer
}

// encodeLogs encodes es, enqueued at at, into log values of at most maxLogValue bytes
// (a single larger entry gets a value of its own).
func encodeLogs(es []Entry, at time.Time) []*encodedLog {
	var out []*encodedLog
	for len(es) > 0 {
		n, size := 0, 32
		for n < len(es) && (n == 0 || size+entrySize(es[n]) <= maxLogValue) {
			size += entrySize(es[n])
			n++
		}
		out = append(out, encodeLog(es[:n], at, size))
		es = es[n:]
	}
	return out
}

func entrySize(e Entry) int {
	return 8 + 3*binary.MaxVarintLen32 + len(e.Dest) + len(e.ID) + len(e.Data)
}

// encodeLog encodes es into one value; size is an upper bound of its length.
func encodeLog(es []Entry, at time.Time, size int) *encodedLog {
	l := &encodedLog{val: make([]byte, 0, size), seqAt: make([]int, len(es)), entries: make([]Entry, len(es))}
	b := append(l.val, logVersion)
	b = appendTime(b, at)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i, e := range es {
		l.seqAt[i] = len(b)
		b = binary.BigEndian.AppendUint64(b, 0)
		b = appendString(b, e.Dest)
		b = appendString(b, e.ID)
		b = binary.AppendUvarint(b, uint64(len(e.Data)))
		l.entries[i] = Entry{ID: e.ID, Dest: e.Dest, Enqueued: at}
	}
	for i, e := range es {
		start := len(b)
		b = append(b, e.Data...)
		l.entries[i].Data = b[start:len(b):len(b)]
	}
	l.val = b // never reallocated: size is an upper bound, so Data stays in val
	return l
}

// setSeq assigns entry i its seq, in the value and in the decoded entry.
func (l *encodedLog) setSeq(i int, seq uint64) {
	binary.BigEndian.PutUint64(l.val[l.seqAt[i]:], seq)
	l.entries[i].Seq = seq
}

// decodeLog decodes a log value; Data slices point into val.
func decodeLog(val []byte) ([]Entry, error) {
	es, sizes, d := decodeLogHeaders(val)
	for i, n := range sizes {
		if len(d.b) < n {
			d.fail()
			break
		}
		es[i].Data = d.b[:n:n]
		d.b = d.b[n:]
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode log value: %w", errCorrupt)
	}
	return es, nil
}

// decodeLogHeaders decodes the entries' headers (Data left nil) and the lengths of
// their data, leaving d at the start of the data, which it does not read.
func decodeLogHeaders(val []byte) (es []Entry, sizes []int, d *decoder) {
	d = &decoder{b: val}
	d.expect(logVersion)
	at := d.time()
	n := d.uvarint()
	if d.err != nil || n > uint64(len(val)) {
		d.fail()
		return nil, nil, d
	}
	es, sizes = make([]Entry, n), make([]int, n)
	for i := range es {
		es[i] = Entry{Seq: d.u64(), Dest: d.str(), ID: d.str(), Enqueued: at}
		size := d.uvarint()
		if size > uint64(len(val)) {
			d.fail()
			return nil, nil, d
		}
		sizes[i] = int(size)
	}
	return es, sizes, d
}

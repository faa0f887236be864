package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Key layout. Every key starts with a one-byte namespace, so the caller's record keys
// (arbitrary bytes) can never collide with the queue's own keys:
//
//	'm' dest                       → meta: head, next seq (as of the last meta write:
//	                                 appends do not rewrite it; open takes one past
//	                                 the last entry key), head attempts, last error
//	'e' len(dest):u16 dest seq:u64 → entry: enqueued, id, data (seq big endian, so a
//	                                 destination's entries sort in seq order; the length
//	                                 prefix keeps "a" from matching "ab"'s entries)
//	'd' id                         → dead letter (listed in id order)
//	'r' key                        → caller record
//
// A destination's entries are exactly the seqs [head, next): Ack, DeadLetter and
// Delete only ever remove from the head. Meta outlives its entries (so seqs keep
// growing on a drained destination) until Delete removes both.
const (
	nsMeta   = 'm'
	nsEntry  = 'e'
	nsDead   = 'd'
	nsRecord = 'r'
)

const codecVersion = 1

var errCorrupt = errors.New("queue: corrupt stored value")

// destMeta is the durable state of one destination.
type destMeta struct {
	Head, Next uint64 // entries are the seqs [Head, Next)
	Attempts   int    // Retry calls on the current head
	LastError  string // reason of the last Retry on the current head
}

func (m destMeta) depth() int { return int(m.Next - m.Head) }

func metaKey(dest string) []byte { return append([]byte{nsMeta}, dest...) }

func entryPrefix(dest string) []byte {
	k := make([]byte, 0, 3+len(dest)+8)
	k = append(k, nsEntry)
	k = binary.BigEndian.AppendUint16(k, uint16(len(dest)))
	return append(k, dest...)
}

func entryKey(dest string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(entryPrefix(dest), seq)
}

func seqOfEntryKey(k []byte) uint64 {
	return binary.BigEndian.Uint64(k[len(k)-8:])
}

func deadKey(id string) []byte { return append([]byte{nsDead}, id...) }

func recordKey(key []byte) []byte { return append([]byte{nsRecord}, key...) }

func encodeMeta(m destMeta) []byte {
	b := make([]byte, 0, 24+len(m.LastError))
	b = append(b, codecVersion)
	b = binary.BigEndian.AppendUint64(b, m.Head)
	b = binary.BigEndian.AppendUint64(b, m.Next)
	b = binary.AppendUvarint(b, uint64(m.Attempts))
	return append(b, m.LastError...)
}

func decodeMeta(b []byte) (destMeta, error) {
	d := decoder{b: b}
	d.version()
	m := destMeta{Head: d.u64(), Next: d.u64(), Attempts: int(d.uvarint())}
	m.LastError = string(d.rest())
	if d.err != nil || m.Head > m.Next || m.Head == 0 {
		return destMeta{}, fmt.Errorf("decode meta: %w", errCorrupt)
	}
	return m, nil
}

// encodeEntry stores what an entry carries besides its dest and seq (in the key) and
// its attempts (in the meta: only the head has any).
func encodeEntry(e Entry) []byte {
	return appendEntry(make([]byte, 0, 12+len(e.ID)+len(e.Data)), e)
}

func appendEntry(b []byte, e Entry) []byte {
	b = append(b, codecVersion)
	b = appendTime(b, e.Enqueued)
	b = appendString(b, e.ID)
	return append(b, e.Data...)
}

// encodeEntries encodes es, enqueued at now, into one buffer.
func encodeEntries(es []Entry, now time.Time) [][]byte {
	size := 0
	for _, e := range es {
		size += 12 + len(e.ID) + len(e.Data)
	}
	buf := make([]byte, 0, size)
	vals := make([][]byte, len(es))
	for i, e := range es {
		e.Enqueued = now
		start := len(buf)
		buf = appendEntry(buf, e)
		vals[i] = buf[start:len(buf):len(buf)]
	}
	return vals
}

func decodeEntry(dest string, seq uint64, b []byte) (Entry, error) {
	d := decoder{b: b}
	d.version()
	e := Entry{Dest: dest, Seq: seq, Enqueued: d.time(), ID: d.str()}
	e.Data = append([]byte(nil), d.rest()...)
	if d.err != nil {
		return Entry{}, fmt.Errorf("decode entry %q/%d: %w", dest, seq, errCorrupt)
	}
	return e, nil
}

// enqueuedOf reads only the enqueue time of an encoded entry.
func enqueuedOf(b []byte) time.Time {
	d := decoder{b: b}
	d.version()
	return d.time()
}

func encodeDead(dl DeadLetter) []byte {
	b := make([]byte, 0, 40+len(dl.Dest)+len(dl.LastError)+len(dl.Reason)+len(dl.Data))
	b = append(b, codecVersion)
	b = appendString(b, dl.Dest) // first: listing by dest prefix decodes only this
	b = appendTime(b, dl.Enqueued)
	b = appendTime(b, dl.DeadAt)
	b = binary.AppendUvarint(b, uint64(dl.Attempts))
	b = binary.AppendUvarint(b, dl.Seq)
	b = appendString(b, dl.LastError)
	b = appendString(b, dl.Reason)
	return append(b, dl.Data...)
}

func decodeDead(id string, b []byte) (DeadLetter, error) {
	d := decoder{b: b}
	d.version()
	var dl DeadLetter
	dl.ID, dl.Dest = id, d.str()
	dl.Enqueued, dl.DeadAt = d.time(), d.time()
	dl.Attempts, dl.Seq = int(d.uvarint()), d.uvarint()
	dl.LastError, dl.Reason = d.str(), d.str()
	dl.Data = append([]byte(nil), d.rest()...)
	if d.err != nil {
		return DeadLetter{}, fmt.Errorf("decode dead letter %q: %w", id, errCorrupt)
	}
	return dl, nil
}

// deadDestOf reads only the destination of an encoded dead letter.
func deadDestOf(b []byte) string {
	d := decoder{b: b}
	d.version()
	return d.str()
}

// appendTime stores t as Unix nanoseconds; the zero time as 0.
func appendTime(b []byte, t time.Time) []byte {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(b, uint64(n))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads fields in order and remembers the first error, so callers check once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errCorrupt, nil }

func (d *decoder) version() {
	if len(d.b) == 0 || d.b[0] != codecVersion {
		d.fail()
		return
	}
	d.b = d.b[1:]
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) time() time.Time {
	n := int64(d.u64())
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if uint64(len(d.b)) < n {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) rest() []byte {
	r := d.b
	d.b = nil
	return r
}

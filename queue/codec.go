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
//	'l' logID:u64                  → one log value: every entry of one Append (or a
//	                                 part of a large one), see encodeLog. Log ids grow
//	                                 by one per value, so the log sorts in commit order.
//	'm' dest                       → meta: the cursor (head), the log id that created
//	                                 this incarnation of dest (since), head attempts,
//	                                 last error. Written when dest is created, by
//	                                 Retry and DeadLetter at once, and by checkpoints
//	                                 after Acks moved the head.
//	'd' id                         → dead letter (listed in id order)
//	'r' key                        → caller record
//
// An entry is live when its destination has a meta, its log value is not older than
// the meta's since (an earlier incarnation, before a Delete), and its seq is at least
// the meta's head. Open rebuilds each destination's in-memory index from the live
// entries of the log. A log value is deleted once none of its entries is live, by the
// checkpoint that also writes the cursors that made them so.
const (
	nsLog    = 'l'
	nsMeta   = 'm'
	nsDead   = 'd'
	nsRecord = 'r'
	nsV1     = 'e' // entry keys of the first layout (one key per entry): refused at open
	nsFlush  = 'z' // a sentinel key, written and dropped to flush Badger's memtables
)

const (
	codecVersion = 1 // dead letters
	metaVersion  = 2
	logVersion   = 2
)

var errCorrupt = errors.New("queue: corrupt stored value")

// destMeta is the durable state of one destination.
type destMeta struct {
	Head      uint64 // first seq not yet acknowledged, as of the last checkpoint
	Since     uint64 // log id of the Append that created this incarnation
	Attempts  int    // Retry calls on the current head
	LastError string // reason of the last Retry on the current head
}

func metaKey(dest string) []byte { return append([]byte{nsMeta}, dest...) }

func logKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{nsLog}, id)
}

func logIDOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[1:]) }

func deadKey(id string) []byte { return append([]byte{nsDead}, id...) }

func recordKey(key []byte) []byte { return append([]byte{nsRecord}, key...) }

func encodeMeta(m destMeta) []byte {
	b := make([]byte, 0, 24+len(m.LastError))
	b = append(b, metaVersion)
	b = binary.BigEndian.AppendUint64(b, m.Head)
	b = binary.BigEndian.AppendUint64(b, m.Since)
	b = binary.AppendUvarint(b, uint64(m.Attempts))
	return append(b, m.LastError...)
}

func decodeMeta(b []byte) (destMeta, error) {
	d := decoder{b: b}
	d.expect(metaVersion)
	m := destMeta{Head: d.u64(), Since: d.u64(), Attempts: int(d.uvarint())}
	m.LastError = string(d.rest())
	if d.err != nil || m.Head == 0 {
		return destMeta{}, fmt.Errorf("decode meta: %w", errCorrupt)
	}
	return m, nil
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

func (d *decoder) version() { d.expect(codecVersion) }

func (d *decoder) expect(v byte) {
	if len(d.b) == 0 || d.b[0] != v {
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

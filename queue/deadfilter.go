package queue

import "hash/maphash"

// deadFilter is a fixed-size Bloom filter of dead-lettered ids. Append must refuse an
// id that is dead-lettered; asking storage for every appended id cost about 40% of
// the writer's time, while the filter answers "surely not" in nanoseconds and only
// "maybe" goes to storage. Ids are never removed (Replay): that only adds false
// positives, which cost a lookup, never a wrong answer. Its size is fixed, so memory
// does not grow with dead letters; past ~200k of them, lookups gradually return.
// Only the writer goroutine uses it (and open, before the writer starts).
//
// It is blocked: an id's bits all sit in one 64-bit word, so a lookup touches one
// cache line instead of four scattered over 256 KiB (four cache misses per appended
// entry were ~4% of the writer's time). While nothing was ever added, the lookup
// does not touch the bits at all.
type deadFilter struct {
	seed  maphash.Seed
	bits  []uint64
	added bool
}

const (
	deadFilterBits   = 1 << 21 // 256 KiB
	deadFilterHashes = 4
)

func newDeadFilter() *deadFilter {
	return &deadFilter{seed: maphash.MakeSeed(), bits: make([]uint64, deadFilterBits/64)}
}

// slot returns the word of id and the mask of its bits in that word: the low 32
// bits of the hash choose the word, 6 bits each of the high ones the bits.
func (f *deadFilter) slot(id string) (int, uint64) {
	h := maphash.String(f.seed, id)
	var mask uint64
	for i := range deadFilterHashes {
		mask |= 1 << ((h >> (32 + 6*i)) & 63)
	}
	return int(uint32(h) % uint32(len(f.bits))), mask
}

func (f *deadFilter) add(id string) {
	w, m := f.slot(id)
	f.bits[w] |= m
	f.added = true
}

// mayContain is false only when id was never added.
func (f *deadFilter) mayContain(id string) bool {
	if !f.added {
		return false
	}
	w, m := f.slot(id)
	return f.bits[w]&m == m
}

package queue

import "hash/maphash"

// deadFilter is a fixed-size Bloom filter of dead-lettered ids. Append must refuse an
// id that is dead-lettered; asking storage for every appended id cost about 40% of
// the writer's time, while the filter answers "surely not" in nanoseconds and only
// "maybe" goes to storage. Ids are never removed (Replay): that only adds false
// positives, which cost a lookup, never a wrong answer. Its size is fixed, so memory
// does not grow with dead letters; past ~200k of them, lookups gradually return.
// Only the writer goroutine uses it (and open, before the writer starts).
type deadFilter struct {
	seed maphash.Seed
	bits []uint64
}

const (
	deadFilterBits   = 1 << 21 // 256 KiB
	deadFilterHashes = 4
)

func newDeadFilter() *deadFilter {
	return &deadFilter{seed: maphash.MakeSeed(), bits: make([]uint64, deadFilterBits/64)}
}

func (f *deadFilter) positions(id string, fn func(word int, mask uint64)) {
	h := maphash.String(f.seed, id)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := uint32(0); i < deadFilterHashes; i++ {
		bit := (h1 + i*h2) % deadFilterBits
		fn(int(bit/64), 1<<(bit%64))
	}
}

func (f *deadFilter) add(id string) {
	f.positions(id, func(w int, m uint64) { f.bits[w] |= m })
}

// mayContain is false only when id was never added.
func (f *deadFilter) mayContain(id string) bool {
	all := true
	f.positions(id, func(w int, m uint64) { all = all && f.bits[w]&m != 0 })
	return all
}

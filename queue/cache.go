package queue

import "sync"

// logCache keeps recently written log values decoded, so that consumers that keep up
// (the usual case) read what was just appended without touching storage: a chat
// change's ten notifications are read by ten destinations from one cached value. It
// is bounded by bytes and evicts the oldest value first; freed values leave at once.
type logCache struct {
	mu    sync.Mutex
	m     map[uint64]cachedLog
	order []uint64 // insertion order, oldest first; may name values already gone
	bytes int
	max   int
}

type cachedLog struct {
	entries []Entry
	size    int
}

// cachedEntryOverhead approximates an Entry's own memory beyond its data.
const cachedEntryOverhead = 128

func newLogCache(max int) *logCache { return &logCache{m: make(map[uint64]cachedLog), max: max} }

func (c *logCache) get(id uint64) ([]Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.m[id]
	return l.entries, ok
}

func (c *logCache) put(id uint64, val []byte, entries []Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(id, val, entries)
}

// putAll caches the log values a commit wrote, under one lock.
func (c *logCache) putAll(done []planned) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pl := range done {
		for _, l := range pl.logs {
			c.putLocked(l.id, l.val, l.entries)
		}
	}
}

func (c *logCache) putLocked(id uint64, val []byte, entries []Entry) {
	size := len(val) + cachedEntryOverhead*len(entries)
	if size > c.max/4 {
		return // one value would push out too much
	}
	if _, ok := c.m[id]; ok {
		return
	}
	c.m[id] = cachedLog{entries: entries, size: size}
	c.order = append(c.order, id)
	c.bytes += size
	for c.bytes > c.max && len(c.order) > 0 {
		c.dropLocked(c.order[0])
		c.order = c.order[1:]
	}
	if len(c.order) > 2*len(c.m)+64 {
		c.compactLocked()
	}
}

// remove drops a freed value.
func (c *logCache) remove(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(id)
}

func (c *logCache) dropLocked(id uint64) {
	if l, ok := c.m[id]; ok {
		c.bytes -= l.size
		delete(c.m, id)
	}
}

// compactLocked forgets the order of values already gone, so order stays O(cached).
func (c *logCache) compactLocked() {
	kept := make([]uint64, 0, len(c.m))
	for _, id := range c.order {
		if _, ok := c.m[id]; ok {
			kept = append(kept, id)
		}
	}
	c.order = kept
}

package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Disk space. Badger writes its value log and memtable logs through memory maps of
// files it creates sparse (2x their size, filled as it goes). On a full filesystem
// a write into such a hole cannot fail with ENOSPC: the process gets SIGBUS and
// dies (seen on a full tmpfs with Badger v4.9.6). So the queue never lets Badger
// run out:
//   - the holes of its files are allocated (fallocate) soon after Badger creates
//     them, so that writes into existing files need no new space;
//   - new data (Append, Replay) is refused with ErrNoSpace while the filesystem has
//     less than the reserve free: room for the files Badger creates next (a value
//     log file, a memtable log, a table from a flush) and for compacting the tree;
//   - below half the reserve every write is refused (cursors stay in memory and
//     are written once space comes back; a crash meanwhile delivers them again).
// Nothing is refused once space is back: the check runs before every commit.

// spaceRefresh is how often the holes are filled and the tree's size read again.
const spaceRefresh = 100 * time.Millisecond

// spaceState is the filesystem's free space and what the store needs to keep free.
type spaceState struct {
	free, reserve int64 // bytes; reserve 0: no limit (memory store, or unknown)
}

// allows tells whether an op may write now.
func (s spaceState) allows(op opKind) bool {
	if op == opAppend || op == opReplay {
		return s.free >= s.reserve
	}
	return s.free >= s.reserve/2
}

func (s spaceState) err() error {
	return fmt.Errorf("%w: %d MiB free, the queue keeps %d MiB free", ErrNoSpace, s.free>>20, s.reserve>>20)
}

// noSpace marks an error caused by a full filesystem as ErrNoSpace.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) && !errors.Is(err, ErrNoSpace) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// diskGuard tracks a Badger directory's space (badgerKV.space).
type diskGuard struct {
	dir     string
	base    int64        // the reserve without the tree
	treeLen func() int64 // the LSM tree's size on disk
	mu      sync.Mutex
	checked time.Time
	tree    int64
}

func (g *diskGuard) space() spaceState {
	free, ok := freeBytes(g.dir)
	if !ok {
		return spaceState{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.checked) >= spaceRefresh {
		g.checked = time.Now()
		fillHoles(g.dir)
		g.tree = g.treeLen()
	}
	return spaceState{free: free, reserve: g.base + g.tree}
}

// fillHoles allocates the unallocated parts of the files in dir, keeping their
// size (a file Badger truncates meanwhile only keeps blocks past its end until
// it is removed). Failures are left for the next round: the reserve covers them.
func fillHoles(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() || strings.HasSuffix(ent.Name(), ".sst") {
			continue // tables are written whole before they are used
		}
		if size, holes := holey(filepath.Join(dir, ent.Name())); holes {
			_ = allocate(filepath.Join(dir, ent.Name()), size)
		}
	}
}

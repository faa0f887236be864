package app

import "golang.org/x/sys/unix"

// diskSpace is what an unprivileged writer may still use on dir's filesystem,
// and the filesystem's size.
func diskSpace(dir string) (free, size float64, ok bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	return float64(st.Bavail) * float64(st.Bsize), float64(st.Blocks) * float64(st.Bsize), true
}

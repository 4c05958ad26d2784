package perf

import (
	"os"
	"syscall"
)

var pageSize = uint64(os.Getpagesize())

// readRSS returns the resident set size from /proc/self/statm, whose second
// field is resident pages. It is one small read, far cheaper than parsing
// /proc/self/status, and uses raw syscalls into a stack buffer so a scrape
// does not allocate an *os.File.
func readRSS() (uint64, bool) {
	fd, err := syscall.Open("/proc/self/statm", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	var buf [128]byte
	n, err := syscall.Read(fd, buf[:])
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return 0, false
	}
	// Fields: size resident shared text lib data dt.
	b := buf[:n]
	i := 0
	for i < len(b) && b[i] != ' ' {
		i++
	}
	i++
	var pages uint64
	digits := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		pages = pages*10 + uint64(b[i]-'0')
		digits++
	}
	if digits == 0 {
		return 0, false
	}
	return pages * pageSize, true
}

// Package procstat reads another process's figures from /proc for tests and
// benchmarks (Linux; elsewhere the figures are 0). Production code must not
// import it. It imports only the standard library.
package procstat

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU is the user+system CPU time process pid has used, from /proc/PID/stat
// in clock ticks (USER_HZ, 100 on Linux); 0 if unknown.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// Children lists the pids of pid's child processes, from
// /proc/PID/task/*/children (a child belongs to the thread that forked it);
// nil if unknown.
func Children(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

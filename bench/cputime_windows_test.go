//go:build windows

package bench

import "time"

// cpuTime is not measured on Windows.
func cpuTime() time.Duration { return 0 }

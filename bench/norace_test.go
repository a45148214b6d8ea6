//go:build !race

package bench

// raceEnabled reports a -race build (see startHub).
const raceEnabled = false

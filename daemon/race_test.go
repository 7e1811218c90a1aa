//go:build race

package daemon

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = true

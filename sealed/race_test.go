//go:build race

package sealed

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = true

//go:build race

package lab

// raceEnabled reports that the tests run under the race detector.
const raceEnabled = true

//go:build !race

package nflog

const raceEnabled = false

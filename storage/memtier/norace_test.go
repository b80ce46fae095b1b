//go:build !race

package memtier

const raceEnabled = false

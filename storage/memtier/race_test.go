//go:build race

package memtier

// raceEnabled lets tests that are slow or meaningless under the race
// detector (heap measurements) skip themselves.
const raceEnabled = true

//go:build race

package mapping

// raceEnabled: the race detector makes sync.Pool drop items at random,
// so a Runner (and its string chunk) is sometimes made anew and
// allocation counts vary from run to run.
const raceEnabled = true

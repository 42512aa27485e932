//go:build race

package salesforcesink

func init() { raceEnabled = true }

package salesforcetest

import (
	"encoding/json"
	"fmt"
	"time"
)

// collectionFaultsJSON is the wire form of CollectionFaults at
// /__emulator/collection-faults: camelCase keys and durations as Go
// duration strings, like Faults'.
type collectionFaultsJSON struct {
	Fail5xxNext        int    `json:"fail5xxNext"`
	CommitThen5xxNext  int    `json:"commitThen5xxNext"`
	CommitThenDropNext int    `json:"commitThenDropNext"`
	CommitThenHoldNext int    `json:"commitThenHoldNext"`
	HoldTimeout        string `json:"holdTimeout"`
	Latency            string `json:"latency"`
	AllOrNoneStatus400 bool   `json:"allOrNoneStatus400"`
	MaxBodyBytes       int64  `json:"maxBodyBytes"`
}

func (f CollectionFaults) wire() collectionFaultsJSON {
	return collectionFaultsJSON{
		Fail5xxNext: f.Fail5xxNext, CommitThen5xxNext: f.CommitThen5xxNext,
		CommitThenDropNext: f.CommitThenDropNext, CommitThenHoldNext: f.CommitThenHoldNext,
		HoldTimeout: f.HoldTimeout.String(), Latency: f.Latency.String(),
		AllOrNoneStatus400: f.AllOrNoneStatus400, MaxBodyBytes: f.MaxBodyBytes,
	}
}

// MarshalJSON encodes the collection faults with camelCase keys and
// durations as Go duration strings ("150ms").
func (f CollectionFaults) MarshalJSON() ([]byte, error) { return json.Marshal(f.wire()) }

// UnmarshalJSON decodes the MarshalJSON form. Keys that are absent keep
// their current value, so a partial document updates only what it names.
func (f *CollectionFaults) UnmarshalJSON(b []byte) error {
	aux := f.wire()
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	hold, err := time.ParseDuration(aux.HoldTimeout)
	if err != nil {
		return fmt.Errorf("holdTimeout: %w", err)
	}
	lat, err := time.ParseDuration(aux.Latency)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	if aux.Fail5xxNext < 0 || aux.CommitThen5xxNext < 0 || aux.CommitThenDropNext < 0 || aux.CommitThenHoldNext < 0 ||
		hold < 0 || lat < 0 || aux.MaxBodyBytes < 0 {
		return fmt.Errorf("collection fault values must not be negative")
	}
	*f = CollectionFaults{
		Fail5xxNext: aux.Fail5xxNext, CommitThen5xxNext: aux.CommitThen5xxNext,
		CommitThenDropNext: aux.CommitThenDropNext, CommitThenHoldNext: aux.CommitThenHoldNext,
		HoldTimeout: hold, Latency: lat, AllOrNoneStatus400: aux.AllOrNoneStatus400, MaxBodyBytes: aux.MaxBodyBytes,
	}
	return nil
}

// CollectionFaults returns the current collection fault switches (the
// counters as they have counted down so far).
func (s *Server) CollectionFaults() CollectionFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.collFaults
}

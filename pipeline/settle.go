package pipeline

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
)

// The outcomes a Settlement gives.
const (
	SettleLoaded = "loaded"
	SettleAbsent = "absent"
)

// Settlement is what a person found in the destination of rows of unknown
// outcome (RunOptions.SettleUnknown). It is safe for concurrent use once
// the run starts.
type Settlement struct {
	// All settles every such row (SettleLoaded or SettleAbsent); "" leaves
	// the rows of operations not in Refs unknown.
	All string
	// Refs settles the rows that failed in one remote operation
	// (RowError.Ref: a Salesforce job id, a REST request), before All.
	Refs map[string]string
	// Rows settles single rows, by sink stage and origin (rowKey), before
	// Refs: an operation may have stored some of its rows and not others.
	Rows map[string]string

	mu         sync.Mutex
	matched    map[string]bool // Refs and Rows keys that settled a row
	rowSources []string        // the files Rows came from
}

// rowKey is the key of Settlement.Rows: a sink stage and a row's origin.
func rowKey(stage, origin string) string { return stage + "\x00" + origin }

// Add adds one setting: "loaded" or "absent" for every row,
// "REF=loaded" / "REF=absent" for the rows of one operation, or "@FILE"
// for single rows (AddFile).
func (s *Settlement) Add(v string) error {
	if file, ok := strings.CutPrefix(v, "@"); ok {
		return s.AddFile(file)
	}
	ref, as, byRef := strings.Cut(v, "=")
	if !byRef {
		ref, as = "", v
	}
	if as != SettleLoaded && as != SettleAbsent {
		return fmt.Errorf("%q: want loaded, absent, JOB_ID=loaded or JOB_ID=absent", v)
	}
	switch {
	case !byRef && s.All != "" && s.All != as:
		return fmt.Errorf("%q: every row is already settled %s", v, s.All)
	case !byRef:
		s.All = as
	case ref == "":
		return fmt.Errorf("%q: no job id before =", v)
	case s.Refs[ref] != "" && s.Refs[ref] != as:
		return fmt.Errorf("%q: %s is already settled %s", v, ref, s.Refs[ref])
	default:
		if s.Refs == nil {
			s.Refs = map[string]string{}
		}
		s.Refs[ref] = as
	}
	return nil
}

// AddFile adds the settlements of single rows in a CSV file: a copy of a
// dead-letter file (or any CSV with its _origin column, and _stage when
// the pipeline has several sinks) with a _settle column added, loaded or
// absent per row; rows with an empty _settle are left unknown.
func (s *Settlement) AddFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	origin, stage, settle := slices.Index(header, "_origin"), slices.Index(header, "_stage"), slices.Index(header, "_settle")
	if origin < 0 || settle < 0 {
		return fmt.Errorf("%s: no _origin or no _settle column: copy the dead-letter file and add a _settle column (loaded or absent per row)", path)
	}
	if s.Rows == nil {
		s.Rows = map[string]string{}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		at := func(i int) string {
			if i >= 0 && i < len(rec) {
				return rec[i]
			}
			return ""
		}
		as := at(settle)
		switch {
		case as == "":
			continue
		case as != SettleLoaded && as != SettleAbsent:
			return fmt.Errorf("%s:%d: _settle %q: want loaded or absent (or empty to leave the row unknown)", path, line, as)
		case at(origin) == "":
			return fmt.Errorf("%s:%d: no _origin: the row cannot be told from others", path, line)
		}
		k := rowKey(at(stage), at(origin))
		if prev := s.Rows[k]; prev != "" && prev != as {
			return fmt.Errorf("%s:%d: %s is already settled %s", path, line, at(origin), prev)
		}
		s.Rows[k] = as
	}
	s.rowSources = append(s.rowSources, path)
	return nil
}

// String returns the settings as Add takes them, comma-separated.
func (s *Settlement) String() string {
	if s == nil {
		return ""
	}
	var out []string
	if s.All != "" {
		out = append(out, s.All)
	}
	for _, ref := range slices.Sorted(maps.Keys(s.Refs)) {
		out = append(out, ref+"="+s.Refs[ref])
	}
	for _, f := range s.rowSources {
		out = append(out, "@"+f)
	}
	return strings.Join(out, ",")
}

// SettlementRecord is a Settlement as a run keeps it between attempts
// (JSON): what a person settled once holds for every later resume of the
// run, its plain and served ones too, until the run finishes.
type SettlementRecord struct {
	All  string            `json:"all,omitempty"`
	Refs map[string]string `json:"refs,omitempty"`
	Rows []SettledRow      `json:"rows,omitempty"`
}

// SettledRow is one row of a SettlementRecord: its sink stage ("" for
// any), its origin and how it was settled.
type SettledRow struct {
	Stage  string `json:"stage,omitempty"`
	Origin string `json:"origin"`
	As     string `json:"as"`
}

// Record returns the settings of s, rows sorted by stage and origin.
func (s *Settlement) Record() SettlementRecord {
	rec := SettlementRecord{All: s.All, Refs: maps.Clone(s.Refs)}
	for _, k := range slices.Sorted(maps.Keys(s.Rows)) {
		stage, origin, _ := strings.Cut(k, "\x00")
		rec.Rows = append(rec.Rows, SettledRow{Stage: stage, Origin: origin, As: s.Rows[k]})
	}
	return rec
}

// SettlementOf returns the Settlement a record holds, or an error naming
// a setting that is not loaded or absent.
func SettlementOf(rec SettlementRecord) (*Settlement, error) {
	s := &Settlement{All: rec.All, Refs: maps.Clone(rec.Refs)}
	bad := func(as string) bool { return as != SettleLoaded && as != SettleAbsent }
	if s.All != "" && bad(s.All) {
		return nil, fmt.Errorf("settlement of every row %q: want loaded or absent", s.All)
	}
	for ref, as := range s.Refs {
		if bad(as) {
			return nil, fmt.Errorf("settlement of %s %q: want loaded or absent", ref, as)
		}
	}
	for _, r := range rec.Rows {
		if bad(r.As) || r.Origin == "" {
			return nil, fmt.Errorf("settlement of row %q %q: want an origin, and loaded or absent", r.Origin, r.As)
		}
		if s.Rows == nil {
			s.Rows = map[string]string{}
		}
		s.Rows[rowKey(r.Stage, r.Origin)] = r.As
	}
	return s, nil
}

// Over returns the settlement of earlier (nil for none) with the settings
// of s added, s's replacing earlier's for the same rows, operation or
// every row: a person may correct what they settled before. Neither is
// changed.
func (s *Settlement) Over(earlier *Settlement) *Settlement {
	out := &Settlement{All: s.All, Refs: maps.Clone(s.Refs), Rows: maps.Clone(s.Rows), rowSources: slices.Clone(s.rowSources)}
	if earlier == nil {
		return out
	}
	if out.All == "" {
		out.All = earlier.All
	}
	for ref, as := range earlier.Refs {
		if _, ok := out.Refs[ref]; !ok {
			if out.Refs == nil {
				out.Refs = map[string]string{}
			}
			out.Refs[ref] = as
		}
	}
	for k, as := range earlier.Rows {
		if _, ok := out.Rows[k]; !ok {
			if out.Rows == nil {
				out.Rows = map[string]string{}
			}
			out.Rows[k] = as
		}
	}
	return out
}

// Describe returns the settings of s for a log line: every row's, the
// operations' and how many single rows.
func (s *Settlement) Describe() string {
	var out []string
	if s.All != "" {
		out = append(out, "every row "+s.All)
	}
	for _, ref := range slices.Sorted(maps.Keys(s.Refs)) {
		out = append(out, ref+"="+s.Refs[ref])
	}
	if n := len(s.Rows); n > 0 {
		out = append(out, fmt.Sprintf("%d single rows", n))
	}
	return strings.Join(out, ", ")
}

// settle returns how a row of unknown outcome that failed in operation
// ref at sink stage stage, read at origin, is settled ("" when it is
// not).
func (s *Settlement) settle(stage, origin, ref string) string {
	for _, k := range [...]string{rowKey(stage, origin), rowKey("", origin)} {
		if as, ok := s.Rows[k]; ok {
			s.match(k)
			return as
		}
	}
	if as, ok := s.Refs[ref]; ok {
		s.match(ref)
		return as
	}
	return s.All
}

func (s *Settlement) match(k string) {
	s.mu.Lock()
	if s.matched == nil {
		s.matched = map[string]bool{}
	}
	s.matched[k] = true
	s.mu.Unlock()
}

// Unmatched returns the operations of Refs whose rows the run did not
// settle (none of its rows of unknown outcome failed in them), sorted, and
// how many rows of Rows matched no such row.
func (s *Settlement) Unmatched() (refs []string, rows int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref := range s.Refs {
		if !s.matched[ref] {
			refs = append(refs, ref)
		}
	}
	for k := range s.Rows {
		if !s.matched[k] {
			rows++
		}
	}
	slices.Sort(refs)
	return refs, rows
}

// settleUnknown returns err (a sink's Write error) with the failures of
// rows of unknown outcome (RecoveryInspect) settled as a person found them
// (RunOptions.SettleUnknown): CodeAssumedLoaded or CodeAssumedAbsent,
// keeping the original code and message in the error and the operation in
// Ref.
func settleUnknown(err error, st *Settlement, stage string, origins []Origin) error {
	return rewriteFailures(err, origins, func(re *RowError, origin Origin) *RowError {
		if RecoveryOf(re.Code) != RecoveryInspect {
			return nil
		}
		as := st.settle(stage, origin.String(), re.Ref)
		if as == "" {
			return nil
		}
		code := CodeAssumedLoaded
		if as == SettleAbsent {
			code = CodeAssumedAbsent
		}
		return &RowError{Origin: re.Origin, Stage: re.Stage, Field: re.Field, Code: code, Retryable: as == SettleAbsent, Ref: re.Ref,
			Err: fmt.Errorf("%s: %w; settled as %s by --settle-unknown", re.Code, re.Err, as)}
	})
}

// keepMaybeStored returns err (a sink's Write error) with the transient
// failures (RecoveryRetry) of rows an earlier send may have written
// (RunOptions.MaybeStored) recorded as CodeOutcomeUnknownRetry: the soak
// found an upsert's row stored by a send whose answer was lost, replayed,
// refused UNABLE_TO_LOCK_ROW, and reported as not loaded while stored.
func keepMaybeStored(err error, maybe func(Origin) bool, origins []Origin) error {
	return rewriteFailures(err, origins, func(re *RowError, origin Origin) *RowError {
		if re.Code == CodeOutcomeUnknownRetry || RecoveryOf(re.Code) != RecoveryRetry || !maybe(origin) {
			return nil
		}
		return &RowError{Origin: re.Origin, Stage: re.Stage, Field: re.Field, Code: CodeOutcomeUnknownRetry, Retryable: true, Ref: re.Ref,
			Err: fmt.Errorf("an earlier send of the row got no answer, so it may be in the destination; sending it again got %s: %w; "+
				"sending it once more is safe (the operation is idempotent)", re.Code, re.Err)}
	})
}

// rewriteFailures returns err (a sink's Write error) with each row failure
// whose *RowError rewrite replaces (non-nil) replaced; rewrite gets the
// row's origin (the error's, else the batch's origins at its index).
// Errors other than *RowErrors are returned as they are.
func rewriteFailures(err error, origins []Origin, rewrite func(re *RowError, origin Origin) *RowError) error {
	var rowErrs *RowErrors
	if !errors.As(err, &rowErrs) {
		return err
	}
	out := &RowErrors{Failures: make([]RowFailure, len(rowErrs.Failures))}
	for i, f := range rowErrs.Failures {
		var re *RowError
		if errors.As(f.Err, &re) {
			origin := re.Origin
			if origin == (Origin{}) && f.Index >= 0 && f.Index < len(origins) {
				origin = origins[f.Index]
			}
			if nre := rewrite(re, origin); nre != nil {
				f.Err = nre
			}
		}
		out.Failures[i] = f
	}
	return out
}

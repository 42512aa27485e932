package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/sync/changes"
)

// Remote reads the destination object of a sync stage (cmd/bulkflow
// implements it for the salesforce sink with a Bulk API 2.0 query job).
type Remote interface {
	// Fields describes the named fields (the sink's input fields), in
	// order. A name that is no field of the object is an error; a
	// relationship column (Parent.External_Id__c) has Type "".
	Fields(ctx context.Context, names []string) ([]Field, error)
	// Records calls fn for every record of the object with its record id
	// and the values of the named fields, in order. A record the reader
	// cannot decode is passed with vals nil. An error from fn stops the
	// read and is returned.
	Records(ctx context.Context, names []string, fn func(id string, vals pipeline.Row) error) error
	// String names the object and org for messages, e.g. "Account at
	// https://acme.my.salesforce.com"; never a secret.
	String() string
}

// idField is the extra field of a snapshot's rows holding the record id.
// It is spooled with the row but not hashed.
const idField = "\x00record_id"

// Snapshot is the destination's records, normalised and spooled to disk
// in key order by a changes.Differ, so that memory stays bounded whatever
// the number of records. Close removes the spill files.
type Snapshot struct {
	d *changes.Differ
	// Read is the number of records read; NoKey those without a key value
	// (they cannot be matched to a row and are left out); Unreadable those
	// the reader could not decode (left out: they look missing).
	Read, NoKey, Unreadable int64
	remote                  string
}

// Canon returns the hash input of rows of schema for a sync whose
// destination is described by fields: the normalised values. It is
// changes.Options.Canon of every run of a seeded sync, so that its
// manifest hashes match a Snapshot's.
func Canon(fields []Field) func(pipeline.Row) pipeline.Row {
	return NewNormalizer(fields).Row
}

// Take reads every record of r into a Snapshot keyed by schema's field
// key. fields is r.Fields of schema's field names; o configures the spill
// (its Canon is set here).
func Take(ctx context.Context, r Remote, schema *pipeline.Schema, key string, fields []Field, o changes.Options) (*Snapshot, error) {
	names := schema.Names()
	keyIdx := schema.Index(key)
	if keyIdx < 0 {
		return nil, fmt.Errorf("sync key %q is not a field of the sink's input (%s)", key, schema)
	}
	ext := make([]pipeline.Field, 0, len(names)+1)
	for i := range names {
		ext = append(ext, schema.Field(i))
	}
	ext = append(ext, pipeline.Field{Name: idField, Type: pipeline.TypeString})
	snapSchema, err := pipeline.NewSchema(ext...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r, err)
	}
	canon := Canon(fields)
	o.Canon = func(row pipeline.Row) pipeline.Row { return canon(row[:len(names)]) }
	d, err := changes.NewDiffer(snapSchema, key, o)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{d: d, remote: r.String()}
	row := make(pipeline.Row, len(names)+1)
	err = r.Records(ctx, names, func(id string, vals pipeline.Row) error {
		s.Read++
		if vals == nil {
			s.Unreadable++
			return nil
		}
		if len(vals) != len(names) {
			return fmt.Errorf("record %s has %d values for %d fields", id, len(vals), len(names))
		}
		copy(row, vals)
		row[len(names)] = id
		if err := d.Add(row, pipeline.Origin{Object: "salesforce:" + id}); err != nil {
			var re *pipeline.RowError
			if errors.As(err, &re) {
				s.NoKey++ // an empty key (or one over 1 MiB): no row can match it
				return nil
			}
			return err
		}
		return nil
	})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("read %s: %w", r, err)
	}
	return s, nil
}

// Close removes the snapshot's spill files.
func (s *Snapshot) Close() error { return s.d.Close() }

// Seed writes to w a manifest holding every record of the snapshot: its
// key, the hash of its normalised values and its record id. A key held by
// several records keeps the first one read (dups counts the others). It
// returns the number of entries written. The caller passes an atomic
// writer and closes it only on success.
func (s *Snapshot) Seed(ctx context.Context, w io.Writer) (entries, dups int64, err error) {
	_, err = s.d.Diff(ctx, nil, func(op changes.Op, key string, row pipeline.Row, _ pipeline.Origin, _ string) error {
		return s.d.Outcome(key, changes.OpNew, true, pipeline.Text(row[len(row)-1]))
	}, func(string, pipeline.Row, pipeline.Origin) error { dups++; return nil })
	if err != nil {
		return 0, dups, fmt.Errorf("seed from %s: %w", s.remote, err)
	}
	n, err := s.d.Commit(ctx, nil, w, false)
	if err != nil {
		return 0, dups, fmt.Errorf("seed from %s: %w", s.remote, err)
	}
	return n, dups, nil
}

// DriftKind says how a synced key differs from the destination.
type DriftKind string

// The kinds of drift.
const (
	// DriftChanged: the record's normalised values differ from those the
	// last sync loaded (someone edited it in Salesforce).
	DriftChanged DriftKind = "changed_in_salesforce"
	// DriftMissing: no record has the key any more (deleted in
	// Salesforce, or its key was edited).
	DriftMissing DriftKind = "missing_in_salesforce"
)

// Drift is one drifted key: the key, its kind and the record id (for
// DriftMissing the id the manifest remembers).
type Drift struct {
	Key  string
	Kind DriftKind
	ID   string
}

// Report counts what a reconcile found.
type Report struct {
	// Read is the number of records read from the destination.
	Read int64 `json:"records_read"`
	// InSync is the number of synced keys whose record matches.
	InSync int64 `json:"in_sync"`
	// Changed and Missing are the drifted keys (see DriftKind).
	Changed int64 `json:"changed_in_salesforce"`
	Missing int64 `json:"missing_in_salesforce"`
	// NotSynced counts records whose key the manifest does not hold (made
	// by someone else, or by a run that failed before committing).
	NotSynced int64 `json:"not_synced"`
	// Pending counts keys whose last change failed to load (unsynced in
	// the manifest): not drift, the next run sends them again anyway.
	Pending int64 `json:"pending"`
	// NoKey and Unreadable count records left out (see Snapshot).
	NoKey      int64 `json:"no_key,omitempty"`
	Unreadable int64 `json:"unreadable,omitempty"`
	// Duplicates counts records sharing a key with an earlier one.
	Duplicates int64 `json:"duplicate_keys,omitempty"`
	// Examples lists up to MaxExamples drifted keys, in key order.
	Examples []string `json:"examples,omitempty"`
	// Fixed says the drifted keys were marked to be sent again by this run.
	Fixed bool `json:"fixed"`
}

// MaxExamples is how many drifted keys a Report lists.
const MaxExamples = 20

// Drifted returns the number of drifted keys.
func (r *Report) Drifted() int64 { return r.Changed + r.Missing }

// Reconcile compares the snapshot with the manifest old (the last sync's)
// key by key and calls drift for every drifted key, in key order. A key
// whose last change failed to load (unsynced) is pending, not drift:
// the next run sends it whatever Salesforce holds. When fix
// is not nil it also writes there the manifest a fixing run diffs
// against: changed keys are marked unsynced (the run sends their rows
// again whatever the data), missing keys are left out (the run sends them
// as new, and an upsert creates the record again), and every other entry
// is kept. The caller passes an atomic writer and closes it only on
// success.
func (s *Snapshot) Reconcile(ctx context.Context, old *changes.Manifest, drift func(Drift) error, fix io.Writer) (*Report, error) {
	rep := &Report{Read: s.Read, NoKey: s.NoKey, Unreadable: s.Unreadable}
	if old == nil {
		return nil, errors.New("reconcile: there is no manifest yet (no run of this sync has committed): run the sync first")
	}
	note := func(d Drift) error {
		if len(rep.Examples) < MaxExamples {
			rep.Examples = append(rep.Examples, d.Key)
		}
		if drift != nil {
			return drift(d)
		}
		return nil
	}
	// The unsynced keys, read alongside the diff (both in key order).
	nextUnsynced, stop := iter.Pull2(old.Unsynced(ctx))
	defer stop()
	var pendKey string
	var pendErr error
	pendOK := true
	advance := func() { pendKey, pendErr, pendOK = nextUnsynced() }
	advance()
	pending := func(key string) (bool, error) {
		for pendOK && pendErr == nil && pendKey < key {
			advance()
		}
		if pendOK && pendErr != nil {
			return false, pendErr
		}
		return pendOK && pendKey == key, nil
	}
	_, err := s.d.Diff(ctx, old, func(op changes.Op, key string, row pipeline.Row, _ pipeline.Origin, oldID string) error {
		if op == changes.OpChanged || op == changes.OpMissing {
			if p, err := pending(key); err != nil {
				return err
			} else if p {
				rep.Pending++
				if op == changes.OpMissing && fix != nil { // sent again as new
					return s.d.Outcome(key, changes.OpMissing, true, "")
				}
				return nil
			}
		}
		switch op {
		case changes.OpUnchanged:
			rep.InSync++
		case changes.OpNew:
			rep.NotSynced++
		case changes.OpChanged:
			rep.Changed++
			return note(Drift{Key: key, Kind: DriftChanged, ID: pipeline.Text(row[len(row)-1])})
		case changes.OpMissing:
			rep.Missing++
			if fix != nil {
				if err := s.d.Outcome(key, changes.OpMissing, true, ""); err != nil {
					return err
				}
			}
			return note(Drift{Key: key, Kind: DriftMissing, ID: oldID})
		}
		return nil
	}, func(string, pipeline.Row, pipeline.Origin) error { rep.Duplicates++; return nil })
	if err != nil {
		return nil, fmt.Errorf("reconcile with %s: %w", s.remote, err)
	}
	if fix == nil {
		return rep, nil
	}
	if _, err := s.d.Commit(ctx, old, fix, true); err != nil {
		return nil, fmt.Errorf("reconcile with %s: %w", s.remote, err)
	}
	rep.Fixed = true
	return rep, nil
}

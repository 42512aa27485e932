package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSettlementAdd: the values --settle-unknown takes, and the ones it
// refuses before any row moves.
func TestSettlementAdd(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return "@" + p
	}
	good := write("good.csv", "_stage,_error_code,_ref,_origin,Name,_settle\n"+
		"load,result_mismatch,750A,a.csv:2,x,loaded\n"+
		"load,result_mismatch,750A,a.csv:3,y,absent\n"+
		"load,result_mismatch,750A,a.csv:4,z,\n")
	for _, tc := range []struct {
		name string
		vals []string
		want string // String() after, or the error's text
		err  bool
	}{
		{"all loaded", []string{"loaded"}, "loaded", false},
		{"all twice, same", []string{"absent", "absent"}, "absent", false},
		{"all both ways", []string{"absent", "loaded"}, "already settled absent", true},
		{"by ref", []string{"750B=absent", "750A=loaded"}, "750A=loaded,750B=absent", false},
		{"ref both ways", []string{"750A=loaded", "750A=absent"}, "750A is already settled loaded", true},
		{"no ref", []string{"=loaded"}, "no job id", true},
		{"bad value", []string{"maybe"}, "want loaded, absent", true},
		{"bad ref value", []string{"750A=stored"}, "want loaded, absent", true},
		{"file", []string{good, "loaded"}, "loaded," + good, false},
		{"file without _settle", []string{write("nosettle.csv", "_origin,Name\na.csv:2,x\n")}, "no _origin or no _settle column", true},
		{"file with a bad _settle", []string{write("bad.csv", "_origin,_settle\na.csv:2,loaded\na.csv:3,yes\n")}, "bad.csv:3: _settle \"yes\"", true},
		{"file without an _origin", []string{write("noorigin.csv", "_origin,_settle\n,loaded\n")}, "noorigin.csv:2: no _origin", true},
		{"file both ways", []string{write("twice.csv", "_origin,_settle\na.csv:2,loaded\na.csv:2,absent\n")}, "twice.csv:3: a.csv:2 is already settled loaded", true},
		{"missing file", []string{"@" + filepath.Join(dir, "none.csv")}, "none.csv", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Settlement
			var err error
			for _, v := range tc.vals {
				if err = s.Add(v); err != nil {
					break
				}
			}
			switch {
			case tc.err && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Add(%q): %v, want an error containing %q", tc.vals, err, tc.want)
			case !tc.err && err != nil:
				t.Errorf("Add(%q): %v", tc.vals, err)
			case !tc.err && s.String() != tc.want:
				t.Errorf("Add(%q): %q, want %q", tc.vals, s.String(), tc.want)
			}
		})
	}
}

// TestSettleUnknownRows: which failures settleUnknown rewrites, and how:
// single rows (by stage and origin) before operations (_ref) before every
// row; only rows of unknown outcome (recovery inspect); the original code
// and message kept; unmatched settlements reported.
func TestSettleUnknownRows(t *testing.T) {
	var st Settlement
	for _, v := range []string{"absent", "J1=loaded", "J9=absent"} {
		if err := st.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	st.Rows = map[string]string{rowKey("load", "a.csv:4"): SettleAbsent, rowKey("", "a.csv:5"): SettleLoaded, rowKey("load", "a.csv:99"): SettleLoaded}
	origins := []Origin{{Object: "a.csv", Line: 2}, {Object: "a.csv", Line: 3}, {Object: "a.csv", Line: 4}, {Object: "a.csv", Line: 5}, {Object: "a.csv", Line: 6}, {Object: "a.csv", Line: 7}}
	in := &RowErrors{}
	in.Add(0, &RowError{Code: CodeResultMismatch, Ref: "J1", Err: errors.New("dup result")})  // by ref: loaded
	in.Add(1, &RowError{Code: CodeOutcomeUnknown, Ref: "J2", Err: errors.New("no answer")})   // every row: absent
	in.Add(2, &RowError{Code: CodeResultMismatch, Ref: "J1", Err: errors.New("dup result")})  // by row (stage): absent
	in.Add(3, &RowError{Code: CodeOutcomeUnknown, Ref: "J2", Err: errors.New("no answer")})   // by row (any stage): loaded
	in.Add(4, &RowError{Code: CodeJobIncomplete, Ref: "J1", Err: errors.New("poll_timeout")}) // its job may still run: kept
	in.Add(5, &RowError{Code: "REQUIRED_FIELD_MISSING", Ref: "J1", Err: errors.New("Name")})  // refused: kept
	out := settleUnknown(in, &st, "load", origins)
	var got *RowErrors
	if !errors.As(out, &got) || len(got.Failures) != 6 {
		t.Fatalf("settleUnknown: %v", out)
	}
	want := []struct {
		code      string
		retryable bool
	}{{CodeAssumedLoaded, false}, {CodeAssumedAbsent, true}, {CodeAssumedAbsent, true}, {CodeAssumedLoaded, false}, {CodeJobIncomplete, false}, {"REQUIRED_FIELD_MISSING", false}}
	for i, f := range got.Failures {
		var re *RowError
		if !errors.As(f.Err, &re) || f.Index != i || re.Code != want[i].code || re.Retryable != want[i].retryable {
			t.Errorf("row %d: %+v, want code %s retryable %v", i, f.Err, want[i].code, want[i].retryable)
			continue
		}
		if strings.HasPrefix(re.Code, "assumed_") && (!strings.Contains(re.Err.Error(), in.Failures[i].Err.(*RowError).Code) || re.Ref == "") {
			t.Errorf("row %d: %q (ref %q) lost the original code or the job", i, re.Err, re.Ref)
		}
	}
	if in.Failures[0].Err.(*RowError).Code != CodeResultMismatch {
		t.Error("settleUnknown changed the sink's errors in place")
	}
	refs, rows := st.Unmatched()
	if strings.Join(refs, ",") != "J9" || rows != 1 {
		t.Errorf("Unmatched: %v, %d rows; want [J9], 1 row (a.csv:99)", refs, rows)
	}
	// No settlement: nothing changes; a plain error passes through.
	plain := errors.New("sink down")
	if got := settleUnknown(plain, &st, "load", origins); got != plain {
		t.Errorf("a plain error became %v", got)
	}
}

// TestSettlementRecordAndOver: a settlement survives its record (the
// document a run keeps between attempts), and a later one replaces an
// earlier one's settings for the same rows, operation or every row and
// keeps the others.
func TestSettlementRecordAndOver(t *testing.T) {
	earlier := &Settlement{All: SettleAbsent, Refs: map[string]string{"750A": SettleLoaded, "750B": SettleAbsent},
		Rows: map[string]string{rowKey("load", "a.csv:2"): SettleLoaded, rowKey("", "a.csv:3"): SettleAbsent}}
	back, err := SettlementOf(earlier.Record())
	if err != nil || !reflect.DeepEqual(back.Record(), earlier.Record()) || back.settle("load", "a.csv:2", "") != SettleLoaded ||
		back.settle("other", "a.csv:3", "750A") != SettleAbsent || back.settle("load", "a.csv:9", "750A") != SettleLoaded {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	later := &Settlement{Refs: map[string]string{"750B": SettleLoaded}, Rows: map[string]string{rowKey("load", "a.csv:2"): SettleAbsent}}
	got := later.Over(earlier).Record()
	want := SettlementRecord{All: SettleAbsent, Refs: map[string]string{"750A": SettleLoaded, "750B": SettleLoaded},
		Rows: []SettledRow{{Origin: "a.csv:3", As: SettleAbsent}, {Stage: "load", Origin: "a.csv:2", As: SettleAbsent}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("later over earlier:\n got %+v\nwant %+v", got, want)
	}
	if got := later.Over(nil).Record(); !reflect.DeepEqual(got, later.Record()) || len(earlier.Refs) != 2 || later.All != "" {
		t.Errorf("over nothing: %+v; or an input changed", got)
	}
	for _, bad := range []SettlementRecord{{All: "maybe"}, {Refs: map[string]string{"750A": ""}}, {Rows: []SettledRow{{As: SettleLoaded}}}} {
		if _, err := SettlementOf(bad); err == nil {
			t.Errorf("SettlementOf(%+v): no error", bad)
		}
	}
}

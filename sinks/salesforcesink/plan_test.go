package salesforcesink

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// failedIndexes returns the row indexes and codes of a Write error.
func failedIndexes(t *testing.T, err error) map[int]string {
	t.Helper()
	out := map[int]string{}
	if err == nil {
		return out
	}
	var re *pipeline.RowErrors
	if !errors.As(err, &re) {
		t.Fatalf("Write: %v", err)
	}
	for _, f := range re.Failures {
		var e *pipeline.RowError
		if errors.As(f.Err, &e) {
			out[f.Index] = e.Code
		} else {
			out[f.Index] = f.Err.Error()
		}
	}
	return out
}

// TestPlanSinkMatchesUploads writes the same rows to a real Sink on an
// emulator, in the batches the engine hands it (max_job_rows rows), and to
// a PlanSink, and checks that the job files are the bytes the sink
// uploaded, job for job, and that both refuse the same rows locally (a
// NaN, a row above max_job_bytes). The PlanSink gets the rows in the
// sink's batches and, as the engine hands them over with its own
// BatchPolicy, in batches of any size (1 to 13 rows; with api auto the
// first of rest_max_rows+1): its cut must not depend on them.
func TestPlanSinkMatchesUploads(t *testing.T) {
	for _, layout := range []struct{ delim, eol, api string }{{"COMMA", "LF", APIBulk}, {"TAB", "CRLF", APIBulk}, {"CARET", "LF", APIBulk}, {"COMMA", "CRLF", APIAuto}} {
		t.Run(layout.delim+"-"+layout.eol+"-"+layout.api, func(t *testing.T) {
			srv := salesforcetest.NewServer(nil)
			defer srv.Close()
			ctx := context.Background()
			opts := NewOptions()
			opts.Object, opts.Operation = "Account", "upsert"
			opts.ExternalIDField = "External_Id__c"
			opts.InstanceURL, opts.Auth.AccessToken = srv.URL, srv.AccessToken()
			opts.PollInitial, opts.PollMax = 5*time.Millisecond, 50*time.Millisecond
			opts.ColumnDelimiter, opts.LineEnding = layout.delim, layout.eol
			opts.MaxJobRows, opts.MaxJobBytes = 7, 400
			opts.API, opts.RestMaxRows = layout.api, 5 // the plan describes Bulk jobs: 40 rows are above rest_max_rows
			lr := 0
			opts.LockRetries = &lr

			rows := genAccounts(40, 9, "P")
			rows[3][2] = math.NaN()
			rows[22][2] = math.Inf(1)
			batchOf := func(rows []pipeline.Row) *pipeline.Batch {
				b := pipeline.NewBatch(accountSchema, 0)
				for _, r := range rows {
					b.Append(r, pipeline.Origin{})
				}
				return b
			}
			// cuts returns where batches of the given sizes start.
			cuts := func(size func(k int) int) []int {
				var at []int
				for i, k := 0, 0; i < len(rows); i, k = i+size(k), k+1 {
					at = append(at, i)
				}
				return at
			}

			real, err := Open(ctx, &pipeline.Env{RunID: "plan-test-" + layout.delim + layout.api}, opts, accountSchema)
			if err != nil {
				t.Fatal(err)
			}
			if got := real.BatchPolicy().MaxRows; got != opts.MaxJobRows {
				t.Fatalf("the sink's batches: %d rows, want max_job_rows %d", got, opts.MaxJobRows)
			}
			realFailed := map[int]string{} // by row number
			for _, at := range cuts(func(int) int { return opts.MaxJobRows }) {
				for idx, code := range failedIndexes(t, real.Write(ctx, batchOf(rows[at:min(at+opts.MaxJobRows, len(rows))]))) {
					realFailed[at+idx] = code
				}
			}
			seen := map[string]bool{}
			for _, c := range realFailed {
				seen[c] = true
			}
			if !seen[CodeInvalidValue] || !seen[CodeRowTooLarge] {
				t.Fatalf("the input should hit invalid_value and row_too_large; codes %v", seen)
			}
			if err := real.Close(ctx); err != nil {
				t.Fatal(err)
			}
			jobs := srv.Jobs()

			r := rand.New(rand.NewPCG(7, uint64(len(layout.delim))))
			first := opts.restMaxRows() + 1
			for feed, at := range map[string][]int{
				"the sink's batches": cuts(func(int) int { return opts.MaxJobRows }),
				"the plan's batches": cuts(func(k int) int {
					if k == 0 && layout.api == APIAuto {
						return first
					}
					return 1 + r.IntN(13)
				}),
			} {
				dir := filepath.Join(t.TempDir(), "load")
				plan, err := OpenPlan(ctx, nil, opts, accountSchema, dir)
				if err != nil {
					t.Fatal(err)
				}
				want := pipeline.BatchPolicy{MaxInFlight: 1}
				if layout.api == APIAuto {
					want.MaxRows = first
				}
				if got := plan.BatchPolicy(); got != want {
					t.Errorf("%s: BatchPolicy %+v, want %+v", feed, got, want)
				}
				planFailed := map[int]string{}
				for k, from := range at {
					to := len(rows)
					if k+1 < len(at) {
						to = at[k+1]
					}
					for idx, code := range failedIndexes(t, plan.Write(ctx, batchOf(rows[from:to]))) {
						planFailed[from+idx] = code
					}
				}
				for i, code := range planFailed {
					if code != CodeInvalidValue && code != CodeRowTooLarge {
						t.Errorf("%s: row %d: plan refused with %s", feed, i, code)
					}
					if realFailed[i] != code {
						t.Errorf("%s: row %d: plan %s, sink %q", feed, i, code, realFailed[i])
					}
				}
				for i, code := range realFailed {
					if (code == CodeInvalidValue || code == CodeRowTooLarge) && planFailed[i] != code {
						t.Errorf("%s: row %d: sink %s, plan %q", feed, i, code, planFailed[i])
					}
				}
				if files, _ := filepath.Glob(filepath.Join(dir, "job-*.csv")); len(files) != 0 {
					t.Errorf("%s: job files visible before Close: %v", feed, files)
				}
				if err := plan.Close(ctx); err != nil {
					t.Fatal(err)
				}
				pj := plan.Jobs()
				if len(pj) != len(jobs) || len(pj) <= (len(rows)+opts.MaxJobRows-1)/opts.MaxJobRows {
					t.Fatalf("%s: plan has %d jobs, the sink ran %d (max_job_bytes must split some)", feed, len(pj), len(jobs))
				}
				for i, j := range jobs {
					got, err := os.ReadFile(pj[i].File)
					if err != nil {
						t.Fatal(err)
					}
					if want := srv.UploadedCSV(j.ID); !bytes.Equal(got, want) {
						t.Errorf("%s: job %d differs:\n--- plan\n%q\n--- uploaded\n%q", feed, i+1, got, want)
					}
					if int64(len(got)) != pj[i].Bytes {
						t.Errorf("%s: job %d: %d bytes, reported %d", feed, i+1, len(got), pj[i].Bytes)
					}
				}
				st := plan.Stats().(PlanStats)
				if st.APICalls.Total != 7*len(pj)+1 || len(st.Jobs) != len(pj) {
					t.Errorf("%s: stats = %+v", feed, st)
				}
			}
		})
	}
}

// TestOpenPlanRefuses checks that OpenPlan applies the sink's own option
// and input field rules.
func TestOpenPlanRefuses(t *testing.T) {
	opts := NewOptions()
	opts.Object, opts.Operation, opts.InstanceURL = "Account", "delete", EmulatorURL
	if _, err := OpenPlan(context.Background(), nil, opts, accountSchema, t.TempDir()); err == nil {
		t.Error("delete with several fields was accepted")
	}
	opts.Operation = "sideways"
	if _, err := OpenPlan(context.Background(), nil, opts, accountSchema, t.TempDir()); err == nil {
		t.Error("bad operation was accepted")
	}
}

// TestRetryable covers the replay selection rule.
func TestRetryable(t *testing.T) {
	for _, c := range []struct {
		code, msg string
		want      bool
	}{
		{"UNABLE_TO_LOCK_ROW", "", true},
		{"REQUIRED_FIELD_MISSING", "Required fields are missing (job 750x, retryable=false)", false},
		{"api_error", "not loaded (retryable=true)", true},
		// Rows whose job may have run are never replayable, whatever the
		// message of an older dead letter says.
		{"job_incomplete", "not confirmed (job 750x, retryable=true)", false},
		{"result_mismatch", "", false},
		{"expr_error", "bad (retryable=true)", false},
		{"connection_refused", "", true},
		{"cancelled", "", true},
		{"aborted", "", true},
		{"expr_error", "", false},
	} {
		if got := Retryable(c.code, c.msg); got != c.want {
			t.Errorf("Retryable(%q, %q) = %v", c.code, c.msg, got)
		}
	}
}

// TestSinkCodesInTable: every code the sink writes is in the one code
// table, so replay, plan and the report classify it the same way.
func TestSinkCodesInTable(t *testing.T) {
	for _, code := range []string{CodeUnprocessed, CodeJobIncomplete, CodeResultMismatch, CodeCancelled, CodeAPIError,
		CodeInvalidValue, CodeRowTooLarge, CodeAPIBudget, CodeLockRow, pipeline.CodeSinkFailed} {
		if _, ok := pipeline.LookupCode(code); !ok {
			t.Errorf("code %q is not in pipeline.Codes", code)
		}
	}
	for _, code := range RetryableCodes {
		if !pipeline.RetryableCode(code) {
			t.Errorf("RetryableCodes lists %q", code)
		}
	}
	e := rowErrHint("bulkflow run p.yaml --resume r1", CodeJobIncomplete, "", "750x", "not confirmed")
	if e.Retryable || e.Ref != "750x" || !strings.Contains(e.Error(), "bulkflow run p.yaml --resume r1") {
		t.Errorf("job_incomplete row error: %+v %v", e, e)
	}
}

// cancelOnWrite is a plan sink whose Write number at cancels the run
// before the plan sees the batch (at < 0: never); race instead cancels
// from another goroutine while Writes go on.
type cancelOnWrite struct {
	*PlanSink
	at, n  int
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(ctx context.Context, b *pipeline.Batch) error {
	c.n++
	if c.n == c.at {
		c.cancel()
	}
	return c.PlanSink.Write(ctx, b)
}

// TestPlanCancelledRun cancels a plan (Ctrl-C) at every Write in turn and
// once from another goroutine at a random moment, with jobs that span
// three of the engine's batches: every row read is then in exactly one
// place, a committed job file (counted planned) or the dead letters
// (cancelled); none is in both, none is lost, and the run does not
// report success.
func TestPlanCancelledRun(t *testing.T) {
	rows := genAccounts(12000, 0, "C")
	for _, at := range []int{1, 2, 3, 5, 8, 11, 0} {
		name := fmt.Sprintf("at-write-%d", at)
		if at == 0 {
			name = "race"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if at == 0 {
				go func() {
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					cancel()
				}()
			}
			r := runPipelineWith(t, ctx, accountSchema, rows, "object: Account\nmax_job_rows: 3000\ninstance_url: \"emulator:\"\napi: bulk\n",
				func(ctx context.Context, env *pipeline.Env, opts *Options, in *pipeline.Schema) (pipeline.Sink, error) {
					p, err := OpenPlan(ctx, env, opts, in, dir)
					if err != nil {
						return nil, err
					}
					return &cancelOnWrite{PlanSink: p, at: at, cancel: cancel}, nil
				})
			if at > 0 && r.rep.Status != pipeline.StatusCancelled {
				t.Fatalf("status %s (err %v), want cancelled", r.rep.Status, r.err)
			}
			if r.rep.Status == pipeline.StatusSucceeded && r.rep.Counts.Read != int64(len(rows)) {
				t.Fatalf("succeeded having read %d of %d rows", r.rep.Counts.Read, len(rows))
			}
			where := map[string]string{}
			for k, code := range dlCodes(t, r.dl, "External_Id__c") {
				if code != CodeCancelled {
					t.Errorf("%s dead-lettered %s, want %s", k, code, CodeCancelled)
				}
				where[k] = "dead letters"
			}
			files, _ := filepath.Glob(filepath.Join(dir, "job-*.csv"))
			planned := 0
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				for _, rec := range recs[1:] {
					if w, dup := where[rec[0]]; dup {
						t.Errorf("%s in %s and in %s", rec[0], w, filepath.Base(f))
					}
					where[rec[0]] = filepath.Base(f)
					planned++
				}
			}
			if partial, _ := filepath.Glob(filepath.Join(dir, "*"+planPartialSuffix)); len(partial) > 0 {
				t.Errorf("uncommitted job files left: %v", partial)
			}
			if int64(planned) != r.rep.Counts.Loaded {
				t.Errorf("job files hold %d rows, the report says %d planned", planned, r.rep.Counts.Loaded)
			}
			for _, row := range rows[:r.rep.Counts.Read] {
				if _, ok := where[row[0].(string)]; !ok {
					t.Errorf("%s read but neither planned nor dead-lettered", row[0])
				}
			}
			if len(where) != int(r.rep.Counts.Read) {
				t.Errorf("%d rows accounted for, %d read", len(where), r.rep.Counts.Read)
			}
			t.Logf("read %d, planned %d in %d jobs, dead-lettered %d (%s)", r.rep.Counts.Read, planned, len(files), len(where)-planned, r.rep.Status)
		})
	}
}

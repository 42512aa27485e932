package salesforcesink

import (
	"bytes"
	"context"
	"errors"
	"math"
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

// TestPlanSinkMatchesUploads writes the same batches to a real Sink on an
// emulator and to a PlanSink, and checks that the job files are the bytes
// the sink uploaded, job for job, and that both refuse the same rows
// locally (a NaN, a row above max_job_bytes).
func TestPlanSinkMatchesUploads(t *testing.T) {
	for _, layout := range []struct{ delim, eol string }{{"COMMA", "LF"}, {"TAB", "CRLF"}, {"CARET", "LF"}} {
		t.Run(layout.delim+"-"+layout.eol, func(t *testing.T) {
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
			opts.API = APIBulk // the plan describes Bulk jobs
			lr := 0
			opts.LockRetries = &lr

			rows := genAccounts(40, 9, "P")
			rows[3][2] = math.NaN()
			var batches []*pipeline.Batch
			for i := 0; i < len(rows); i += opts.MaxJobRows {
				b := pipeline.NewBatch(accountSchema, 0)
				for _, r := range rows[i:min(i+opts.MaxJobRows, len(rows))] {
					b.Append(r, pipeline.Origin{})
				}
				batches = append(batches, b)
			}

			real, err := Open(ctx, &pipeline.Env{RunID: "plan-test-" + layout.delim}, opts, accountSchema)
			if err != nil {
				t.Fatal(err)
			}
			var realFailed []map[int]string
			seen := map[string]bool{}
			for _, b := range batches {
				f := failedIndexes(t, real.Write(ctx, b))
				for _, c := range f {
					seen[c] = true
				}
				realFailed = append(realFailed, f)
			}
			if !seen[CodeInvalidValue] || !seen[CodeRowTooLarge] {
				t.Fatalf("the input should hit invalid_value and row_too_large; codes %v", seen)
			}
			if err := real.Close(ctx); err != nil {
				t.Fatal(err)
			}
			jobs := srv.Jobs()

			dir := filepath.Join(t.TempDir(), "load")
			plan, err := OpenPlan(ctx, nil, opts, accountSchema, dir)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range batches {
				got := failedIndexes(t, plan.Write(ctx, b))
				for idx, code := range got {
					if code != CodeInvalidValue && code != CodeRowTooLarge {
						t.Errorf("batch %d row %d: plan refused with %s", i, idx, code)
					}
					if realFailed[i][idx] != code {
						t.Errorf("batch %d row %d: plan %s, sink %q", i, idx, code, realFailed[i][idx])
					}
				}
				for idx, code := range realFailed[i] {
					if (code == CodeInvalidValue || code == CodeRowTooLarge) && got[idx] != code {
						t.Errorf("batch %d row %d: sink %s, plan %q", i, idx, code, got[idx])
					}
				}
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "job-*.csv")); len(files) != 0 {
				t.Errorf("job files visible before Close: %v", files)
			}
			if err := plan.Close(ctx); err != nil {
				t.Fatal(err)
			}
			pj := plan.Jobs()
			if len(pj) != len(jobs) || len(pj) <= len(batches) {
				t.Fatalf("plan has %d jobs, the sink ran %d (batches %d; max_job_bytes must split some)", len(pj), len(jobs), len(batches))
			}
			for i, j := range jobs {
				got, err := os.ReadFile(pj[i].File)
				if err != nil {
					t.Fatal(err)
				}
				if want := srv.UploadedCSV(j.ID); !bytes.Equal(got, want) {
					t.Errorf("job %d differs:\n--- plan\n%q\n--- uploaded\n%q", i+1, got, want)
				}
				if int64(len(got)) != pj[i].Bytes {
					t.Errorf("job %d: %d bytes, reported %d", i+1, len(got), pj[i].Bytes)
				}
			}
			st := plan.Stats().(PlanStats)
			if st.APICalls.Total != 7*len(pj)+1 || len(st.Jobs) != len(pj) {
				t.Errorf("stats = %+v", st)
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

package salesforce_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

func html503(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(503)
	io.WriteString(w, "<html><body>Down for maintenance</body></html>")
}

func TestRetryPolicy(t *testing.T) {
	getJob := func(c *salesforce.Client) error { _, err := c.Job(context.Background(), jobID); return err }
	createJob := func(c *salesforce.Client) error {
		_, err := c.CreateJob(context.Background(), salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
		return err
	}
	ok := jsonFile(t, "create_response.json", 200)
	tests := []struct {
		name       string
		method     string
		path       string
		h          http.HandlerFunc
		call       func(*salesforce.Client) error
		wantCalls  int
		wantErr    error
		wantDelays int
		minDelay   time.Duration // of the first delay
	}{
		{"503 html twice then ok", "GET", "/jobs/ingest/" + jobID, sequence(html503, html503, ok), getJob, 3, nil, 2, 0},
		{"429 with Retry-After", "GET", "/jobs/ingest/" + jobID, sequence(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			apiError(429, "", "slow down")(w, r)
		}, ok), getJob, 2, nil, 1, time.Second},
		{"REQUEST_LIMIT_EXCEEDED then ok", "GET", "/jobs/ingest/" + jobID, sequence(apiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."), ok), getJob, 2, nil, 1, 0},
		{"REQUEST_LIMIT_EXCEEDED forever", "GET", "/jobs/ingest/" + jobID, apiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), getJob, 5, salesforce.ErrRequestLimit, 4, 0},
		{"500 forever stops at MaxAttempts", "GET", "/jobs/ingest/" + jobID, apiError(500, "UNKNOWN_EXCEPTION", "boom"), getJob, 5, errAny, 4, 0},
		{"400 not retried", "GET", "/jobs/ingest/" + jobID, apiError(400, "API_ERROR", "bad"), getJob, 1, errAny, 0, 0},
		{"404 not retried", "GET", "/jobs/ingest/" + jobID, apiError(404, "NOT_FOUND", "The requested resource does not exist"), getJob, 1, salesforce.ErrNotFound, 0, 0},
		{"connection reset on GET retried", "GET", "/jobs/ingest/" + jobID, sequence(hangUp, ok), getJob, 2, nil, 1, 0},
		{"connection reset on create not retried", "POST", "/jobs/ingest", sequence(hangUp, ok), createJob, 1, errAny, 0, 0},
		{"503 on create retried", "POST", "/jobs/ingest", sequence(html503, ok), createJob, 2, nil, 1, 0},
		{"create validation error", "POST", "/jobs/ingest", apiError(400, "INVALIDJOB", "InvalidJob : Unable to find object: Acount"), createJob, 1, salesforce.ErrInvalidJob, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.handle(tc.method+" "+base+tc.path, tc.h)
			sl := newSleeper()
			c := staticClient(t, s, fastOptions(sl, nil))
			err := tc.call(c)
			checkErr(t, "call", err, tc.wantErr)
			if got := len(s.requests(tc.method, base+tc.path)); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
			d := sl.Delays()
			if len(d) != tc.wantDelays {
				t.Errorf("delays = %v, want %d of them", d, tc.wantDelays)
			}
			if len(d) > 0 && d[0] < tc.minDelay {
				t.Errorf("first delay %v < %v", d[0], tc.minDelay)
			}
			for _, x := range d {
				if x > time.Second {
					t.Errorf("delay %v exceeds MaxBackoff", x)
				}
			}
			if err != nil && salesforce.IsRetryable(err) != (tc.wantDelays > 0) && tc.wantCalls > 1 {
				t.Errorf("IsRetryable(%v) = %v", err, salesforce.IsRetryable(err))
			}
		})
	}
}

func TestRetryMaxElapsed(t *testing.T) {
	s := newServer(t)
	s.handle("GET "+base+"/limits", html503)
	sl := newSleeper()
	o := fastOptions(sl, nil)
	o.MaxAttempts = 100
	o.MaxElapsed = 3 * time.Second
	c := staticClient(t, s, o)
	_, err := c.Limits(context.Background())
	var ae *salesforce.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("err = %v", err)
	}
	var total time.Duration
	for _, d := range sl.Delays() {
		total += d
	}
	if total > 3*time.Second || len(sl.Delays()) < 2 {
		t.Errorf("slept %v in %d delays; budget 3s", total, len(sl.Delays()))
	}
}

func TestAPIErrorParsing(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		want     salesforce.APIError
		sentinel error
	}{
		{"invalid job state", 400, "application/json", `[{"errorCode":"INVALIDJOBSTATE","message":"Aborting already Completed Job not allowed"}]`,
			salesforce.APIError{StatusCode: 400, Code: "INVALIDJOBSTATE", Message: "Aborting already Completed Job not allowed"}, salesforce.ErrInvalidJobState},
		{"not found", 404, "application/json", `[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]`,
			salesforce.APIError{StatusCode: 404, Code: "NOT_FOUND", Message: "The requested resource does not exist"}, salesforce.ErrNotFound},
		{"job not complete", 412, "application/json", `[{"errorCode":"JOB_NOT_COMPLETE","message":"can only download query results of successfully completed bulk job with status: JOB_COMPLETE. Current status: IN_PROGRESS"}]`,
			salesforce.APIError{StatusCode: 412, Code: "JOB_NOT_COMPLETE", Message: "can only download query results of successfully completed bulk job with status: JOB_COMPLETE. Current status: IN_PROGRESS"}, salesforce.ErrJobNotComplete},
		{"fields", 400, "application/json", `[{"message":"bad","errorCode":"INVALID_FIELD","fields":["Name","Email"]},{"message":"second","errorCode":"X"}]`,
			salesforce.APIError{StatusCode: 400, Code: "INVALID_FIELD", Message: "bad", Fields: []string{"Name", "Email"},
				More: []salesforce.APIError{{StatusCode: 400, Code: "X", Message: "second"}}}, nil},
		{"api disabled", 403, "application/json", `[{"message":"The REST API is not enabled for this Organization.","errorCode":"API_DISABLED_FOR_ORG"}]`,
			salesforce.APIError{StatusCode: 403, Code: "API_DISABLED_FOR_ORG", Message: "The REST API is not enabled for this Organization."}, salesforce.ErrAPIDisabled},
		{"feature not enabled", 400, "application/json", `[{"message":"x","errorCode":"FEATURENOTENABLED"}]`,
			salesforce.APIError{StatusCode: 400, Code: "FEATURENOTENABLED", Message: "x"}, salesforce.ErrFeatureNotEnabled},
		{"html body", 502, "text/html", `<html>Bad Gateway</html>`,
			salesforce.APIError{StatusCode: 502, Body: "<html>Bad Gateway</html>"}, nil},
		{"empty body", 405, "", ``, salesforce.APIError{StatusCode: 405}, nil},
		{"single object", 400, "application/json", `{"errorCode":"API_ERROR","message":"Invalid value: 'x' supplied for property: 'operation'"}`,
			salesforce.APIError{StatusCode: 400, Code: "API_ERROR", Message: "Invalid value: 'x' supplied for property: 'operation'"}, nil},
		{"long body truncated", 500, "text/plain", strings.Repeat("x", 1000), salesforce.APIError{StatusCode: 500, Body: strings.Repeat("x", 256) + "…"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.handle("DELETE "+base+"/jobs/ingest/"+jobID, func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			o := fastOptions(newSleeper(), nil)
			o.MaxAttempts = 1
			c := staticClient(t, s, o)
			err := c.DeleteJob(context.Background(), jobID)
			var ae *salesforce.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			want := tc.want
			want.Method, want.Path = "DELETE", base+"/jobs/ingest/"+jobID
			for i := range want.More {
				want.More[i].Method, want.More[i].Path = want.Method, want.Path
			}
			got := *ae
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Errorf("APIError =\n%+v\nwant\n%+v", got, want)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			mustContain(t, err.Error(), "delete job "+jobID)
		})
	}
}

// TestSecretsNeverLeak forces failures on every path that might echo a
// credential and checks errors and debug logs for the token, the client
// secret and the refresh token.
func TestSecretsNeverLeak(t *testing.T) {
	s := newServer(t)
	te := &tokenEndpoint{}
	te.install(s)
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			// A hostile or buggy server echoing our credentials back.
			fmt.Fprintf(w, `[{"errorCode":"INVALID_SESSION_ID","message":"Session %s invalid (header %s)"}]`,
				strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("Authorization"))
		}
	}
	s.handle("GET "+base+"/jobs/ingest/"+jobID, echo(401))
	s.handle("GET "+base+"/limits", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprintf(w, "<html>internal error; your request: Authorization: %s</html>", r.Header.Get("Authorization"))
	})
	s.handle("PUT "+base+"/jobs/ingest/"+jobID+"/batches", echo(400))
	s.handle("POST "+base+"/jobs/ingest", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `[{"errorCode":"X","message":"{\"access_token\":\"%s\"}"}]`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	})

	var logs bytes.Buffer
	ctx := context.Background()
	auth, err := salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{LoginURL: s.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	o := fastOptions(newSleeper(), &logs)
	o.MaxAttempts = 2
	c, err := salesforce.NewClient(ctx, auth, o)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	_, err = c.Job(ctx, jobID)
	errs = append(errs, err)
	_, err = c.Limits(ctx)
	errs = append(errs, err)
	errs = append(errs, c.UploadJobData(ctx, jobID, salesforce.BytesBody([]byte("Name\nx\n"))))
	_, err = c.CreateJob(ctx, salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert})
	errs = append(errs, err)

	// Token endpoint rejecting a refresh token and echoing the form.
	rte := &tokenEndpoint{check: func(url.Values) string { return "invalid_grant" }}
	s2 := newServer(t)
	rte.install(s2)
	_, err = salesforce.RefreshToken(ctx, salesforce.RefreshTokenConfig{LoginURL: s2.URL, ClientID: clientID, ClientSecret: clientSecret, RefreshToken: "5Aep861-REFRESH-SECRET"})
	errs = append(errs, err)
	s3 := newServer(t)
	(&tokenEndpoint{check: func(url.Values) string { return "invalid_client" }}).install(s3)
	_, err = salesforce.ClientCredentials(ctx, salesforce.ClientCredentialsConfig{LoginURL: s3.URL, ClientID: clientID, ClientSecret: clientSecret})
	errs = append(errs, err)

	tok, _ := auth.Token(ctx)
	secrets := []string{testToken, tokenN(1), tokenN(2), tokenN(3), clientSecret, "5Aep861-REFRESH-SECRET", "SECRET"}
	var all strings.Builder
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d succeeded; want a forced error", i)
			continue
		}
		fmt.Fprintf(&all, "%v\n%+v\n%#v\n", err, err, err)
	}
	fmt.Fprintf(&all, "%v %+v %#v %s\n", tok, tok, tok, tok)
	all.Write(logs.Bytes())
	for _, sec := range secrets {
		if strings.Contains(all.String(), sec) {
			t.Errorf("secret %q leaked into errors/logs:\n%s", sec, all.String())
		}
	}
	if !strings.Contains(logs.String(), "salesforce request") {
		t.Errorf("expected debug logs, got %q", logs.String())
	}
}

// TestRepeatableCreate: with Options.RepeatableCreate a create whose
// connection was lost is retried by the client (the sink's own create loop
// is gone); without it, it is not (see TestRetryPolicy).
func TestRepeatableCreate(t *testing.T) {
	s := newServer(t)
	s.handle("POST "+base+"/jobs/ingest", sequence(hangUp, jsonFile(t, "create_response.json", 200)))
	o := fastOptions(newSleeper(), nil)
	o.RepeatableCreate = true
	c := staticClient(t, s, o)
	if _, err := c.CreateJob(context.Background(), salesforce.CreateJobRequest{Object: "Account", Operation: salesforce.OpInsert}); err != nil {
		t.Fatalf("CreateJob: %v", err)
	}
	if got := len(s.requests("POST", base+"/jobs/ingest")); got != 2 {
		t.Errorf("%d creates, want 2", got)
	}
}

// TestWaitJobFailures: WaitJob polls again after failed polls, up to
// PollOptions.Failures in a row; a definite refusal ends it at once.
func TestWaitJobFailures(t *testing.T) {
	fail := apiError(500, "UNKNOWN_EXCEPTION", "boom")
	for _, tc := range []struct {
		name     string
		h        http.HandlerFunc
		failures int
		wantErr  bool
		polls    int
	}{
		// MaxAttempts 1: every failed call is one failed poll.
		{"two failed polls tolerated", sequence(fail, fail, jobState("JobComplete")), 2, false, 3},
		{"two failed polls, one allowed", sequence(fail, fail, jobState("JobComplete")), 1, true, 2},
		{"default: none allowed", sequence(fail, jobState("JobComplete")), 0, true, 1},
		{"definite refusal ends it", sequence(apiError(400, "API_ERROR", "bad"), jobState("JobComplete")), 3, true, 1},
		{"failures in a row only", sequence(fail, jobState("InProgress"), fail, jobState("JobComplete")), 1, false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t)
			s.handle("GET "+base+"/jobs/ingest/"+jobID, tc.h)
			o := fastOptions(newSleeper(), nil)
			o.MaxAttempts = 1
			c := staticClient(t, s, o)
			info, err := c.WaitJob(context.Background(), jobID, &salesforce.PollOptions{Initial: time.Millisecond, Failures: tc.failures, Timeout: time.Hour})
			if (err != nil) != tc.wantErr {
				t.Fatalf("WaitJob = %+v, %v; want error %v", info, err, tc.wantErr)
			}
			if got := len(s.requests("GET", base+"/jobs/ingest/"+jobID)); got != tc.polls {
				t.Errorf("%d polls, want %d", got, tc.polls)
			}
		})
	}
}

package salesforcetest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// TestCollectionFaultsAdmin sets collection faults over HTTP, as a test
// driving a separately started `bulkflow emulator` must: a partial POST
// changes only the keys it names, GET returns what is in force, and bad
// values are refused with 400 and leave the switches as they were.
func TestCollectionFaultsAdmin(t *testing.T) {
	srv := salesforcetest.NewServer(nil)
	defer srv.Close()
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/__emulator/collection-faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(`{"latency":"150ms","commitThen5xxNext":2}`); code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := post(`{"commitThenDropNext":1}`); code != http.StatusOK {
		t.Fatalf("second POST: %d %s", code, body)
	}
	want := salesforcetest.CollectionFaults{Latency: 150 * time.Millisecond, CommitThen5xxNext: 2, CommitThenDropNext: 1}
	if got := srv.CollectionFaults(); got != want {
		t.Errorf("after two partial POSTs: %+v, want %+v", got, want)
	}
	for _, bad := range []string{`{"latency":"soon"}`, `{"fail5xxNext":-1}`, `{"latency":`} {
		if code, body := post(bad); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 400", bad, code, body)
		}
	}
	if got := srv.CollectionFaults(); got != want {
		t.Errorf("after refused POSTs: %+v, want %+v (unchanged)", got, want)
	}
	resp, err := http.Get(srv.URL + "/__emulator/collection-faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["latency"] != "150ms" || got["commitThen5xxNext"] != 2.0 || got["commitThenDropNext"] != 1.0 {
		t.Errorf("GET: %v", got)
	}
}

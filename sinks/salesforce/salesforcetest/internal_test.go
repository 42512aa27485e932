package salesforcetest

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecoverAnswersJSON(t *testing.T) {
	s, err := NewHandler(&Options{Logf: func(string, ...any) { panic("boom") }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/services/data/", nil))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != jsonContentType {
		t.Fatalf("status %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if got := rec.Body.String(); got[:2] != `[{` {
		t.Errorf("body %s", got)
	}
}

func TestIDs(t *testing.T) {
	for in, want := range map[string]string{"750ak000009BWKL": "750ak000009BWKLAA4", "0018Z00002rGc7Y": "0018Z00002rGc7YQAS"} {
		if got := To18(in); got != want {
			t.Errorf("To18(%s) = %s, want %s", in, got, want)
		}
		if id15, ok := normalizeID(want); !ok || id15 != in {
			t.Errorf("normalizeID(%s) = %s %v", want, id15, ok)
		}
	}
	if _, ok := normalizeID("0018Z00002rGc7YQAA"); ok {
		t.Error("bad suffix accepted")
	}
	s, _ := NewHandler(nil)
	defer s.Close()
	s.mu.Lock()
	id := s.newIDLocked("001")
	s.mu.Unlock()
	if To18(id[:15]) != id {
		t.Errorf("generated id %s has a bad suffix", id)
	}
}

func TestJSONEncoder(t *testing.T) {
	v := obj{{"a", rawNum("62.0")}, {"b", []any{obj{{"c", "x\"<>"}}}}, {"d", nil}, {"e", []any{}}}
	if got, want := string(encodeJSON(v, false)), `{"a":62.0,"b":[{"c":"x\"<>"}],"d":null,"e":[]}`; got != want {
		t.Errorf("compact = %s, want %s", got, want)
	}
	if got, want := string(encodeJSON(v, true)), "{\n  \"a\" : 62.0,\n  \"b\" : [ {\n    \"c\" : \"x\\\"<>\"\n  } ],\n  \"d\" : null,\n  \"e\" : [ ]\n}"; got != want {
		t.Errorf("pretty = %s, want %s", got, want)
	}
}

package redact_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline/redact"
)

func TestSetRedact(t *testing.T) {
	const secret = "s3cr/t+&?=\"<x>é"
	var s redact.Set
	if got := s.Redact("nothing " + secret); got != "nothing "+secret {
		t.Fatalf("empty set changed the text: %q", got)
	}
	s.Add(secret)
	s.Add("short") // 5 bytes: below MinLen, ignored
	s.Add("s3cr/t+&?=\"<x>é-and-more")
	q, _ := json.Marshal(secret)
	tests := []struct {
		name, in, want string
	}{
		{"raw", "token " + secret + " end", "token [redacted] end"},
		{"query escaped", "GET https://h/p?sig=" + url.QueryEscape(secret) + "&x=1", "GET https://h/p?sig=[redacted]&x=1"},
		{"path escaped", "https://h/" + url.PathEscape(secret) + "/services", "https://h/[redacted]/services"},
		{"go quoted", fmt.Sprintf("bad value %q", secret), `bad value "[redacted]"`},
		{"ascii quoted", fmt.Sprintf("bad value %+q", secret), `bad value "[redacted]"`},
		{"json", `{"e":` + string(q) + `}`, `{"e":"[redacted]"}`},
		{"query decoded", "sig=s3cr/t &?=\"<x>é", "sig=[redacted]"},
		{"html", "<td>" + html.EscapeString(secret) + "</td>", "<td>[redacted]</td>"},
		{"longer secret masked whole", "x s3cr/t+&?=\"<x>é-and-more y", "x [redacted] y"},
		{"twice", secret + secret, "[redacted][redacted]"},
		{"below MinLen not registered", "a short word", "a short word"},
		{"no secret", "plain text", "plain text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	n := s.Len()
	s.Add(secret)
	if s.Len() != n {
		t.Errorf("adding a known secret again changed the set: %d -> %d", n, s.Len())
	}
}

func TestWriterAndHandler(t *testing.T) {
	const secret = "canary-7f3a9c-writer"
	var buf bytes.Buffer
	w := redact.Writer(&buf)
	fmt.Fprintf(w, "before registering: %s\n", secret)
	if !strings.Contains(buf.String(), secret) {
		t.Fatalf("an unregistered value was masked: %q", buf.String())
	}
	redact.Register(secret)
	buf.Reset()
	n, err := fmt.Fprintf(w, "bulkflow: open %s?sig=%s: boom\n", "in.csv", url.QueryEscape(secret))
	if err != nil || n != len("bulkflow: open in.csv?sig=")+len(url.QueryEscape(secret))+len(": boom\n") {
		t.Errorf("Write returned %d, %v; want the caller's length", n, err)
	}
	if got := buf.String(); got != "bulkflow: open in.csv?sig=[redacted]: boom\n" {
		t.Errorf("writer wrote %q", got)
	}
	if redact.Unwrap(w) != &buf || redact.Writer(w) != w {
		t.Error("Unwrap/Writer do not round-trip")
	}

	buf.Reset()
	log := slog.New(redact.Handler(slog.NewJSONHandler(&buf, nil))).With("url", "s3://b/k?token="+secret)
	log.Warn("retrying "+secret,
		"err", errors.New("status 500 for "+secret),
		"path", url.PathEscape(secret),
		slog.Group("req", "q", secret, "n", 3),
		"list", []string{"a", secret},
		"count", 7)
	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("log line holds the secret: %s", out)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"msg":   "retrying [redacted]",
		"url":   "s3://b/k?token=[redacted]",
		"err":   "status 500 for [redacted]",
		"path":  "[redacted]",
		"req":   map[string]any{"q": "[redacted]", "n": float64(3)},
		"list":  "[a [redacted]]",
		"count": float64(7),
	}
	for k, v := range want {
		if fmt.Sprint(rec[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
}

// BenchmarkRedact: the cost per message (a dead-letter reason) with no
// secret registered and with ten.
func BenchmarkRedact(b *testing.B) {
	msg := "not loaded: create job Account: salesforce: POST /services/data/v62.0/jobs/ingest: 503 SERVER_UNAVAILABLE: Service temporarily unavailable (retryable=true)"
	var none, ten redact.Set
	for i := range 10 {
		ten.Add(fmt.Sprintf("secret-value-%02d-xyz", i))
	}
	for _, bc := range []struct {
		name string
		set  *redact.Set
	}{{"none", &none}, {"ten", &ten}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if bc.set.Redact(msg) != msg {
					b.Fatal("a message without secrets changed")
				}
			}
		})
	}
}

package salesforce

import (
	"testing"
)

func TestParseLimitInfo(t *testing.T) {
	tests := []struct {
		in     string
		want   APIUsage
		wantOK bool
	}{
		{"api-usage=25/15000", APIUsage{25, 15000}, true},
		{"api-usage=10018/100000", APIUsage{10018, 100000}, true},
		{"per-app-api-usage=1/2(appName=x), api-usage=3/4", APIUsage{3, 4}, true},
		{"api-usage=x/4", APIUsage{}, false},
		{"", APIUsage{}, false},
	}
	for _, tc := range tests {
		got, ok := parseLimitInfo(tc.in)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("parseLimitInfo(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"access_token":"abc.def","x":1}`, `{"access_token":"REDACTED","x":1}`},
		{`client_secret=s3cr3t&grant_type=x`, `client_secret=REDACTED&grant_type=x`},
		{`Authorization: Bearer eyJ.abc.def)`, `Authorization: Bearer REDACTED)`},
		{`session 00DHs0000001gPL!AQ4AQFtZ3Xx9 bad`, `session 00DHs0000001gPL!REDACTED bad`},
		{`nothing here`, `nothing here`},
	}
	for _, tc := range tests {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := redact("token XYZW123 end", "XYZW123"); got != "token REDACTED end" {
		t.Errorf("explicit secret: %q", got)
	}
}

func TestRedactJWT(t *testing.T) {
	in := `assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl rejected`
	if got, want := redact(in), "assertion REDACTED rejected"; got != want {
		t.Errorf("redact(%q) = %q, want %q", in, got, want)
	}
}

func TestAcceptEncoding(t *testing.T) {
	tests := []struct {
		c    Compression
		host string
		want string
	}{
		{"", "acme.my.salesforce.com", "gzip"},
		{CompressionAuto, "acme.my.salesforce.com", "gzip"},
		{CompressionAuto, "127.0.0.1", "identity"},
		{CompressionAuto, "::1", "identity"},
		{CompressionAuto, "localhost", "identity"},
		{"", "127.0.0.1", "identity"},
		{CompressionGzip, "127.0.0.1", "gzip"},
		{CompressionNone, "acme.my.salesforce.com", "identity"},
	}
	for _, tc := range tests {
		if got := tc.c.acceptEncoding(tc.host); got != tc.want {
			t.Errorf("%q.acceptEncoding(%q) = %q, want %q", tc.c, tc.host, got, tc.want)
		}
	}
	if Compression("brotli").Valid() {
		t.Error(`Compression("brotli").Valid() = true`)
	}
}

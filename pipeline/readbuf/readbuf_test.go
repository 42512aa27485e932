package readbuf

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestFill: Fill keeps the unconsumed bytes, moved to the front, grows the
// buffer when they fill it, and records how the source ended.
func TestFill(t *testing.T) {
	b := New(iotest.OneByteReader(strings.NewReader("abcdef")), 4)
	for b.End < 4 {
		if !b.Fill() {
			t.Fatalf("Fill read nothing at %d bytes", b.End)
		}
	}
	if got := string(b.Buf[:b.End]); got != "abcd" {
		t.Fatalf("after 4 fills: %q", got)
	}
	b.Pos = 1 // "a" consumed
	b.Fill()
	if got := string(b.Buf[b.Pos:b.End]); got != "bcde" || b.Pos != 0 {
		t.Fatalf("after a consumed byte: %q at %d, want \"bcde\" at 0", got, b.Pos)
	}
	b.Fill() // full: doubles
	if len(b.Buf) != 8 || string(b.Buf[:b.End]) != "bcdef" {
		t.Fatalf("grown buffer %d bytes holding %q", len(b.Buf), b.Buf[:b.End])
	}
	for b.Fill() {
	}
	if b.Err != io.EOF || string(b.Buf[b.Pos:b.End]) != "bcdef" {
		t.Fatalf("at the end: %v, %q", b.Err, b.Buf[b.Pos:b.End])
	}
	if b.Fill() {
		t.Error("Fill read after the end")
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestFillNoProgress(t *testing.T) {
	b := New(emptyReader{}, 4)
	if b.Fill() || b.Err != io.ErrNoProgress {
		t.Errorf("Fill over a reader that returns nothing: %v", b.Err)
	}
}

// TestRest: the rest is the unconsumed bytes, then what the source has
// left, or its error again.
func TestRest(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		src  io.Reader
		want string
		err  error
	}{
		{"more to come", strings.NewReader("abcdefgh"), "cdefgh", nil},
		{"at the end", strings.NewReader("abcd"), "cd", nil},
		{"after an error", io.MultiReader(strings.NewReader("abcd"), iotest.ErrReader(boom)), "cd", boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.src, 4)
			for b.End < 4 && b.Fill() {
			}
			if tc.err != nil || tc.name == "at the end" {
				b.Fill() // meet the end or the error
			}
			b.Pos = 2
			got, err := io.ReadAll(b.Rest())
			if string(got) != tc.want || !errors.Is(err, tc.err) && err != tc.err {
				t.Errorf("Rest read %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

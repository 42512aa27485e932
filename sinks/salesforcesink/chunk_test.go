package salesforcesink

import (
	"errors"
	"io"
	"os"
	"testing"
)

// TestChunkBodyReaders checks that an in-memory chunk's buffer goes back
// to the pool only when no upload reader of it is open, and that a closed
// reader reads nothing more (the transport may close a body late): a
// reused buffer must never be read as an earlier chunk's CSV.
func TestChunkBodyReaders(t *testing.T) {
	data := append(getSpoolBuf(64), "a,b\n1,2\n"...)
	c := &chunk{data: data}
	body, err := c.body()
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := body.Open()
	r2, _ := body.Open()
	if got, err := io.ReadAll(r1); err != nil || string(got) != "a,b\n1,2\n" || body.Size != int64(len(got)) {
		t.Fatalf("read %q, %v (size %d)", got, err, body.Size)
	}
	r1.Close()
	r1.Close() // a second Close does not count
	if n := c.readers.Load(); n != 1 {
		t.Fatalf("%d readers open, want 1", n)
	}
	if _, err := r1.Read(make([]byte, 4)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	// r2 is still open: releasing must not pool the buffer.
	data[0] = 'x'
	c.releaseData()
	if c.data != nil {
		t.Fatal("data kept")
	}
	if b := getSpoolBuf(1); cap(b) > 0 && &b[:1][0] == &data[0] {
		t.Fatal("the buffer of an open reader was pooled")
	}
	if got, _ := io.ReadAll(r2); string(got) != "x,b\n1,2\n" {
		t.Fatalf("open reader read %q", got)
	}
	r2.Close()

	if n := c.readers.Load(); n != 0 {
		t.Fatalf("%d readers open, want 0", n)
	}
}

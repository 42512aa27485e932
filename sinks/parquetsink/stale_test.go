//go:build unix

package parquetsink_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/parquetsink"
)

// killedSinkEnv makes the test binary a parquet sink to be killed
// (TestMain).
const killedSinkEnv = "PARQUETSINK_KILLED_SINK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(killedSinkEnv); dir != "" {
		killedSink(dir)
		return
	}
	os.Exit(m.Run())
}

// staleSchema is the schema the killed sink and the next one write.
var staleSchema = pipeline.MustSchema(
	pipeline.Field{Name: "id", Type: pipeline.TypeInt},
	pipeline.Field{Name: "name", Type: pipeline.TypeString},
)

// staleBatch returns a batch of n rows of staleSchema.
func staleBatch(n int) *pipeline.Batch {
	b := pipeline.NewBatch(staleSchema, n)
	for i := range n {
		b.Append(pipeline.Row{int64(i), fmt.Sprintf("row %d", i)}, pipeline.Origin{Object: "test", Row: int64(i + 1)})
	}
	return b
}

// killedSink opens the parquet sink on dir/out.parquet, writes a batch,
// says "ready" once its temporary file exists and waits to be killed.
func killedSink(dir string) {
	s, err := pipeline.DefaultRegistry().OpenSink(context.Background(), &pipeline.Env{BaseDir: dir, RunID: "killed"},
		"parquet", &parquetsink.Options{URL: "out.parquet"}, staleSchema)
	if err == nil {
		err = s.Write(context.Background(), staleBatch(100))
	}
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(dir, "out.parquet.*.tmp")); len(m) == 1 {
			break
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(2)
}

// TestStaleTempRemoved: a process writing a parquet sink is killed with
// SIGKILL and leaves out.parquet.<hex>.tmp; the next parquet sink writing
// out.parquet removes it once it is a minute old (not before), says so in
// the log (warn), and writes its own file, which reads back.
func TestStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), killedSinkEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	left, _ := filepath.Glob(filepath.Join(dir, "out.parquet.*.tmp"))
	if line != "ready\n" || len(left) != 1 {
		t.Fatalf("killed sink said %q and left %v, want one temporary file", line, left)
	}
	open := func() string {
		var log bytes.Buffer
		env := &pipeline.Env{BaseDir: dir, RunID: "next", Logger: slog.New(slog.NewTextHandler(&log, nil))}
		s, err := pipeline.DefaultRegistry().OpenSink(context.Background(), env, "parquet", &parquetsink.Options{URL: "out.parquet"}, staleSchema)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), staleBatch(3)); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		return log.String()
	}
	// Just left: it might still be renamed by a writer that just closed it.
	if log := open(); strings.Contains(log, "removed") {
		t.Errorf("a fresh temporary file was removed:\n%s", log)
	}
	if _, err := os.Stat(left[0]); err != nil {
		t.Fatalf("fresh temporary file: %v", err)
	}
	old := time.Now().Add(-2 * time.Minute)
	if err := os.Chtimes(left[0], old, old); err != nil {
		t.Fatal(err)
	}
	log := open()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "parquet sink: removed temporary files that a killed writer") ||
		!strings.Contains(log, filepath.Base(left[0])) {
		t.Errorf("log does not name the removed file:\n%s", log)
	}
	if _, err := os.Stat(left[0]); !os.IsNotExist(err) {
		t.Errorf("stale temporary file: %v, want it removed", err)
	}
	if rest, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(rest) != 0 {
		t.Errorf("temporary files left: %v", rest)
	}
	if _, rows := readBack(t, filepath.Join(dir, "out.parquet")); len(rows) != 3 || rows[2][1] != "row 2" {
		t.Errorf("out.parquet rows %v, want the 3 the last sink wrote", rows)
	}
}

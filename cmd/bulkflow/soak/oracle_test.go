package soak

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
)

// liveRow is one row of a live dead-letter file: a row the product says is
// not in Salesforce and still waits for a replay, a fix or a resume.
type liveRow struct {
	key  string // the source row's key column
	code string // _error_code
	file string // the dead-letter file
}

// dlFile is a dead-letter file a manifest lists.
type dlFile struct {
	path     string
	sha256   string
	rows     [][]string // data rows
	header   []string
	consumed *replayRecord // the replay that took its rows, if any
	runID    string        // the run that wrote it
	status   string        // that run's status in its manifest
	finished time.Time     // when that run's attempt ended (its manifest's finished_at)
}

// col returns the index of column name in the file's header, or -1.
func (f *dlFile) col(name string) int { return slices.Index(f.header, name) }

// taken reports whether row i was handed to a replay: by default a replay
// sends the rows whose _retryable is true, with --all every row.
func (f *dlFile) taken(i int) bool {
	if f.consumed == nil {
		return false
	}
	if f.consumed.All {
		return true
	}
	r := f.col("_retryable")
	return r >= 0 && f.rows[i][r] == "true"
}

// replayRecord is the part of an entry of <dead_letter>/replayed.json the
// harness reads (cmd/bulkflow's replayEntry).
type replayRecord struct {
	SHA256 string          `json:"sha256"`
	RunID  string          `json:"run_id"`
	All    bool            `json:"all"`
	Status string          `json:"status"`
	Counts pipeline.Counts `json:"counts"`
}

// blocks mirrors replay's rule: a replay that may have sent rows consumes
// its file (a later replay of it is refused).
func (r *replayRecord) blocks() bool {
	return r.Status == "running" || r.Counts.Loaded > 0 || r.Counts.DeadLettered > 0
}

// manifest is the part of a dead-letter manifest.json the harness reads
// (pipeline.Manifest): the live files, and the replays that took their
// rows (replayed_by, where the manifest records them).
type manifest struct {
	RunID      string    `json:"run_id"`
	Status     string    `json:"status"`
	FinishedAt time.Time `json:"finished_at"`
	Files      []struct {
		URL        string   `json:"url"`
		Rows       int64    `json:"rows"`
		ReplayedBy []string `json:"replayed_by"`
	} `json:"files"`
}

// readDeadLetters reads every manifest under dlDir (<dl>/<run id>/
// manifest.json), the files they list and replayed.json. It returns the
// listed files, with the replay that consumed each, and problems found on
// the way (a manifest whose row count does not match its file).
func readDeadLetters(dlDir string) ([]*dlFile, []string, error) {
	replayed := map[string]*replayRecord{} // by sha256, replays that consumed their file
	byRun := map[string]*replayRecord{}
	if data, err := os.ReadFile(filepath.Join(dlDir, "replayed.json")); err == nil {
		var led struct {
			Replays []*replayRecord `json:"replays"`
		}
		if err := json.Unmarshal(data, &led); err != nil {
			return nil, nil, fmt.Errorf("%s/replayed.json: %w", dlDir, err)
		}
		for _, r := range led.Replays {
			byRun[r.RunID] = r
			if r.blocks() {
				replayed[r.SHA256] = r
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	manifests, err := filepath.Glob(filepath.Join(dlDir, "*", "manifest.json"))
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(manifests)
	var files []*dlFile
	var problems []string
	for _, mf := range manifests {
		data, err := os.ReadFile(mf)
		if err != nil {
			return nil, nil, err
		}
		var m manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", mf, err)
		}
		for _, lf := range m.Files {
			path := strings.TrimPrefix(lf.URL, "file://")
			if !filepath.IsAbs(path) {
				path = filepath.Join(filepath.Dir(mf), filepath.Base(path))
			}
			f, err := readDLFile(path)
			if err != nil {
				problems = append(problems, fmt.Sprintf("manifest %s lists %s: %v", mf, lf.URL, err))
				continue
			}
			if int64(len(f.rows)) != lf.Rows {
				problems = append(problems, fmt.Sprintf("manifest %s says %s has %d rows, the file has %d", mf, lf.URL, lf.Rows, len(f.rows)))
			}
			f.runID, f.status, f.finished = m.RunID, m.Status, m.FinishedAt
			f.consumed = replayed[f.sha256]
			for _, id := range lf.ReplayedBy {
				if f.consumed == nil {
					f.consumed = byRun[id]
				}
			}
			if f.consumed == nil && len(lf.ReplayedBy) > 0 {
				f.consumed = &replayRecord{RunID: lf.ReplayedBy[0], Status: "listed in the manifest"}
			}
			files = append(files, f)
		}
	}
	return files, problems, nil
}

// readDLFile reads a dead-letter CSV and its sha256 (as replay computes it).
func readDLFile(path string) (*dlFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no header", path)
	}
	sum := sha256.Sum256(data)
	return &dlFile{path: path, sha256: hex.EncodeToString(sum[:]), header: recs[0], rows: recs[1:]}, nil
}

// liveRows returns the rows of files that no replay took.
func liveRows(files []*dlFile, keyField string) []liveRow {
	var out []liveRow
	for _, f := range files {
		kc, cc := f.col(keyField), f.col("_error_code")
		for i, row := range f.rows {
			if f.taken(i) {
				continue
			}
			l := liveRow{file: f.path}
			if kc >= 0 {
				l.key = row[kc]
			}
			if cc >= 0 {
				l.code = row[cc]
			}
			out = append(out, l)
		}
	}
	return out
}

// verdict is the outcome of comparing the emulator's truth with the
// source and the live dead letters.
type verdict struct {
	Lost        int // source rows neither stored nor in a live dead letter
	Duplicated  int // extra stored copies of source rows, and stored records of no source row
	Misreported int // rows stored and dead-lettered, dead-lettered twice, or stored with other values
	Problems    []string
}

// When judge runs: the final check, between steps, or after a run was
// cancelled (Ctrl-C).
type judgeMode int

const (
	// judgeFinal: every row is settled.
	judgeFinal judgeMode = iota
	// judgeBetween: a row dead-lettered with a code whose recovery is
	// --resume (its job's outcome is unknown) may also be stored; only a
	// resume can tell, and the final check comes after one.
	judgeBetween
	// judgeCancelled: as judgeBetween, and rows the run never read (it
	// was cancelled, or a stage failed) may be nowhere yet.
	judgeCancelled
)

// judge checks the exactly-once promise: every source row (key → Name) is
// stored at most once, and either stored exactly once or in exactly one
// live dead-letter file; stored records carry the source's Name. A row
// dead-lettered with a code whose recovery is "inspect" (Salesforce's
// results contradict the upload, e.g. result_mismatch) may be stored or
// not at any time: the product says a person must look.
func judge(source map[string]string, keyField string, records []map[string]string, live []liveRow, mode judgeMode) verdict {
	var v verdict
	examples := map[string]int{}
	note := func(kind, format string, args ...any) {
		if examples[kind]++; examples[kind] <= 3 {
			v.Problems = append(v.Problems, kind+": "+fmt.Sprintf(format, args...))
		}
	}
	stored := map[string]int{}
	for _, r := range records {
		k := r[keyField]
		name, ok := source[k]
		if !ok {
			v.Duplicated++
			note("duplicated", "record %s (%s=%q) matches no source row", r["Id"], keyField, k)
			continue
		}
		stored[k]++
		if r["Name"] != name {
			v.Misreported++
			note("misreported", "record %s (%s) stored with Name %q, the source says %q", r["Id"], k, r["Name"], name)
		}
	}
	inDL := map[string][]liveRow{}
	for _, l := range live {
		if _, ok := source[l.key]; !ok {
			v.Misreported++
			note("misreported", "dead-letter row %s=%q in %s matches no source row", keyField, l.key, l.file)
			continue
		}
		if pipeline.RecoveryOf(l.code) == pipeline.RecoverySettled {
			// A person found it stored (assumed_loaded; the harness looked
			// it up): dead-lettered so that it is accounted for, never
			// sent again, and done. A second copy stored is caught above.
			continue
		}
		inDL[l.key] = append(inDL[l.key], l)
	}
	keys := make([]string, 0, len(source))
	for k := range source {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		n, d := stored[k], inDL[k]
		switch {
		case n > 1:
			v.Duplicated += n - 1
			note("duplicated", "%s stored %d times", k, n)
		case n == 0 && len(d) == 0 && mode == judgeCancelled:
			// not read before the run was cancelled or failed
		case n == 0 && len(d) == 0:
			v.Lost++
			note("lost", "%s is neither stored nor in a live dead-letter file", k)
		case n == 1 && len(d) == 1 && pipeline.RecoveryOf(d[0].code) == pipeline.RecoveryInspect:
			// a person must look at the job
		case n == 1 && len(d) == 1 && d[0].code == pipeline.CodeOutcomeUnknownRetry:
			// an idempotent write (update, upsert) whose earlier answer was
			// lost: the product says it may be stored, and a replay of it
			// cannot duplicate it
		case n == 1 && len(d) == 1 && mode != judgeFinal && pipeline.RecoveryOf(d[0].code) == pipeline.RecoveryResume:
			// outcome unknown until a resume settles it
		case n == 1 && len(d) > 0:
			v.Misreported++
			note("misreported", "%s is stored and also dead-lettered %s in %s", k, d[0].code, d[0].file)
		case n == 0 && len(d) > 1:
			v.Misreported++
			note("misreported", "%s is in %d live dead-letter rows (%s in %s, %s in %s)", k, len(d), d[0].code, d[0].file, d[1].code, d[1].file)
		}
	}
	for kind, n := range examples {
		if n > 3 {
			v.Problems = append(v.Problems, fmt.Sprintf("%s: %d more", kind, n-3))
		}
	}
	slices.Sort(v.Problems)
	return v
}

// ok reports whether the verdict found nothing wrong.
func (v verdict) ok() bool { return v.Lost == 0 && v.Duplicated == 0 && v.Misreported == 0 }

// storedCounts returns how many records carry each key, and how many
// distinct source keys are stored.
func storedCounts(source map[string]string, keyField string, records []map[string]string) (byKey map[string]int, distinct int, extra int) {
	byKey = map[string]int{}
	for _, r := range records {
		k := r[keyField]
		if _, ok := source[k]; !ok {
			extra++
			continue
		}
		if byKey[k]++; byKey[k] == 1 {
			distinct++
		}
	}
	return byKey, distinct, extra
}

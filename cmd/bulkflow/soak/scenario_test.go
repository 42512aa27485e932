package soak

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
	"github.com/bulkflow/bulkflow/pipeline/sync/syncer"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

// Scenario classes. The class of a seed is classes[seed % len(classes)].
const (
	classFaults     = "faults"     // one run under random faults, then replays
	classKill       = "kill"       // SIGKILL at a random moment, resumes (some killed again)
	classInterrupt  = "interrupt"  // SIGINT (Ctrl-C) at a random moment, then a resume
	classConcurrent = "concurrent" // SIGKILL, then two resumes of the run at once
	classIncomplete = "incomplete" // jobs outlive poll_timeout (job_incomplete); replay before the resume
	classRecut      = "recut"      // SIGKILL, the source re-exported in another order, resume
	classUnknownID  = "unknown-id" // a finished run, then --resume of an id no run had
	classREST       = "rest"       // api: rest (sObject Collections): faults, commits without an answer, SIGKILL mid-request, resume
	// classSync: an insert sync (sync: {mode: changed}, state kept)
	// SIGKILLed or interrupted, then the scheduler's plain `run` (which
	// must resume the run: a new run would insert again what it loaded);
	// in half the scenarios a second export (names changed, rows added)
	// synced the same way; replays, and a last plain run that must send
	// nothing.
	classSync = "sync"
)

var classes = []string{classFaults, classKill, classInterrupt, classConcurrent, classIncomplete, classRecut, classUnknownID, classREST, classSync}

// industries are valid Account.Industry values (a restricted picklist);
// badIndustry is refused by it (a row that needs a fix).
var industries = []string{"Banking", "Energy", "Retail", "Technology"}

const badIndustry = "Bogus Industry"

// scenario is everything a seed decides.
type scenario struct {
	Seed        uint64
	Class       string
	Op          string // insert or upsert
	KeyField    string // AccountNumber for insert (not unique, so duplicates show), External_Id__c for upsert
	Rows        int
	BadRows     int // rows with badIndustry
	JobRows     int // max_job_rows
	Concurrency int
	LockRetries int
	PollTimeout time.Duration
	Faults      salesforcetest.Faults
	// KillAfterJobs and KillExtra place the first attempt's kill: once
	// the emulator has this many new jobs, after this much more time.
	KillAfterJobs int
	KillExtra     time.Duration
	ResumeKills   int  // classKill: resumes that are killed again before the last one
	Remap         bool // classRecut: edit the mapping (else re-export the source in another order)
	ClearFaults   bool // clear the faults before the first resume
	ReplayFaults  bool // keep the faults on during replays
	ReplayTwice   bool // a second replay round, and a second replay of a consumed file
	// API is the sink's api: bulk, or rest for classREST.
	API string
	// CollFaults are the emulator's collection fault switches (classREST):
	// latency gives the kill a window; commit-then-500/drop/hold answer
	// requests whose rows were saved without a definite answer.
	CollFaults salesforcetest.CollectionFaults
	// KillAfterRequests places classREST's kill: once the emulator has
	// this many more collection requests, KillExtra later (0: no kill).
	KillAfterRequests int
	// Interrupt: classSync's first run gets a SIGINT (Ctrl-C), else a
	// SIGKILL.
	Interrupt bool
	// Versions is how many exports classSync syncs (1 or 2); the second
	// run's signal and kill moment are Interrupt2 and KillAfterJobs2.
	Versions       int
	Interrupt2     bool
	KillAfterJobs2 int
	// Mirror: classSync upserts by External_Id__c with delete_missing
	// (a mirror), and its second export also drops rows.
	Mirror bool
	// DropAdded: a Mirror scenario with a second export has a third, which
	// drops about half the keys the second added, after the second's
	// killed or interrupted run (which may have stored some of them
	// without committing them: keys in doubt), and runs once more.
	DropAdded bool
	// FanOut: classSync's rows also go to a second sync stage, a CSV
	// archive after the Salesforce stage, so that the two commit one after
	// the other and a kill may land between them.
	FanOut bool
	// KillAtCommit: a FanOut scenario's first sync run is SIGKILLed as
	// soon as the Salesforce stage's commit record changes, to land
	// between the two stages' commits (where a timed kill rarely lands).
	KillAtCommit bool
}

// newScenario derives a scenario from a seed.
func newScenario(seed uint64, long bool) scenario {
	r := rand.New(rand.NewPCG(seed, 0x50a4))
	sc := scenario{Seed: seed, Class: classes[seed%uint64(len(classes))], Op: "insert", KeyField: "AccountNumber", API: "bulk"}
	if r.IntN(4) == 0 {
		sc.Op, sc.KeyField = "upsert", "External_Id__c"
	}
	if long {
		sc.Rows = 800 + r.IntN(2400)
		sc.JobRows = 150 + r.IntN(350)
	} else {
		sc.Rows = 300 + r.IntN(400)
		sc.JobRows = 80 + r.IntN(120)
	}
	if r.IntN(3) == 0 {
		sc.BadRows = 1 + r.IntN(5)
	}
	sc.Concurrency = 1 + r.IntN(4)
	sc.LockRetries = r.IntN(3)
	sc.PollTimeout = 30 * time.Second
	jobs := (sc.Rows + sc.JobRows - 1) / sc.JobRows
	sc.KillAfterJobs = 1 + r.IntN(jobs)
	sc.KillExtra = time.Duration(r.IntN(200)) * time.Millisecond
	sc.ClearFaults = r.IntN(3) == 0
	sc.ReplayFaults = r.IntN(2) == 0
	sc.ReplayTwice = r.IntN(2) == 0

	faultsOn := true
	switch sc.Class {
	case classKill, classInterrupt, classConcurrent, classRecut:
		faultsOn = r.IntN(10) < 7
		switch sc.Class {
		case classKill:
			sc.ResumeKills = r.IntN(3)
		case classRecut:
			sc.Remap = r.IntN(2) == 0
		}
	case classIncomplete:
		faultsOn = false
		sc.PollTimeout = time.Duration(100+r.IntN(150)) * time.Millisecond
	case classUnknownID:
		faultsOn = r.IntN(2) == 0
	case classSync:
		faultsOn = r.IntN(10) < 7
		sc.Interrupt = r.IntN(3) == 0
		// The last run must send nothing: a row whose source value needs
		// a fix would be sent (and refused) again by every run.
		sc.BadRows = 0
		// Insert, the operation whose sync resumes an unfinished run: an
		// upsert sync's next plain run may send the rows again (the same
		// records are updated; TestSyncKilledThenRunAgain).
		sc.Op, sc.KeyField = "insert", "AccountNumber"
		// A third are mirrors instead: upsert with delete_missing, whose
		// next plain run after a kill starts afresh (sending a row again
		// updates the same record) and must never delete a record whose
		// row is still exported.
		if sc.Mirror = r.IntN(3) == 0; sc.Mirror {
			sc.Op, sc.KeyField = "upsert", "External_Id__c"
		} else if r.IntN(3) == 0 {
			// An insert sync through REST creates, whose rows of unknown
			// outcome (commits without an answer) a person settles.
			sc.API = "rest"
			sc.CollFaults = randomCollectionFaults(r)
		}
		// Half the scenarios sync a second export (some names changed,
		// rows added) with a second kill and scheduled run.
		sc.Versions = 1 + r.IntN(2)
		sc.Interrupt2 = r.IntN(3) == 0
		sc.KillAfterJobs2 = 1 + r.IntN(max(1, sc.Rows/5/sc.JobRows+1))
		// Drawn from a generator of its own, so that the seeds played
		// before fan-out was added play as they did.
		fr := rand.New(rand.NewPCG(seed, 0xfa40))
		sc.FanOut = !sc.Mirror && fr.IntN(2) == 0
		sc.KillAtCommit = sc.FanOut && !sc.Interrupt && fr.IntN(2) == 0
		// Also from one of its own.
		sc.DropAdded = sc.Mirror && sc.Versions == 2 && rand.New(rand.NewPCG(seed, 0xd40b)).IntN(2) == 0
	case classREST:
		faultsOn = r.IntN(10) < 7
		sc.API = "rest"
		sc.CollFaults = randomCollectionFaults(r)
		if r.IntN(4) != 0 {
			requests := (sc.Rows + salesforcetest.MaxCollectionRecords - 1) / salesforcetest.MaxCollectionRecords
			sc.KillAfterRequests = 1 + r.IntN(requests)
			sc.KillExtra = time.Duration(r.IntN(int(sc.CollFaults.Latency/time.Millisecond)+1)) * time.Millisecond
			if r.IntN(3) == 0 {
				// a crash between Salesforce's commit and the client's record
				sc.CollFaults.CommitThenHoldNext = 1
				sc.CollFaults.HoldTimeout = 5 * time.Second
			}
		}
	}
	if faultsOn {
		sc.Faults = randomFaults(r)
		if sc.API == "rest" {
			// Bulk-only switches: no job runs on the REST path.
			sc.Faults.ProcessingDelay, sc.Faults.FailJobAfterRows, sc.Faults.DuplicateResultRow = 0, 0, false
			if sc.Faults == (salesforcetest.Faults{}) {
				sc.Faults.FailRate5xx = 0.05
			}
		}
	}
	// Kills need a window: jobs wait before they are processed.
	switch sc.Class {
	case classKill, classInterrupt, classConcurrent, classRecut, classSync:
		if sc.Faults.ProcessingDelay == 0 {
			sc.Faults.ProcessingDelay = time.Duration(50+r.IntN(250)) * time.Millisecond
		}
	case classIncomplete:
		sc.Faults.ProcessingDelay = sc.PollTimeout + time.Duration(200+r.IntN(600))*time.Millisecond
	}
	return sc
}

// randomFaults switches on at least one fault.
func randomFaults(r *rand.Rand) salesforcetest.Faults {
	var f salesforcetest.Faults
	for f == (salesforcetest.Faults{}) {
		if r.IntN(2) == 0 {
			f.FailRate5xx = 0.01 + 0.09*r.Float64()
		}
		if r.IntN(2) == 0 {
			f.LockErrorRate = 0.05 * r.Float64()
		}
		if r.IntN(3) == 0 {
			f.DropConnectionRate = 0.04 * r.Float64()
		}
		switch r.IntN(4) {
		case 0:
			f.TokenTTL = time.Duration(300+r.IntN(1500)) * time.Millisecond
		case 1:
			f.TokenMaxUses = 10 + r.IntN(90)
		}
		if r.IntN(2) == 0 {
			f.ProcessingDelay = time.Duration(20+r.IntN(300)) * time.Millisecond
		}
		if r.IntN(8) == 0 {
			f.FailJobAfterRows = int64(20 + r.IntN(200))
		}
		if r.IntN(12) == 0 {
			f.DuplicateResultRow = true
		}
	}
	return f
}

// randomCollectionFaults returns collection fault switches: a latency of
// 20-120 ms per request (a real org spends that much; it gives kills a
// window), and sometimes requests whose rows are saved but whose answer is
// a 500 or a dropped connection.
func randomCollectionFaults(r *rand.Rand) salesforcetest.CollectionFaults {
	f := salesforcetest.CollectionFaults{Latency: time.Duration(20+r.IntN(100)) * time.Millisecond}
	if r.IntN(2) == 0 {
		f.CommitThen5xxNext = r.IntN(3)
	}
	if r.IntN(2) == 0 {
		f.CommitThenDropNext = r.IntN(3)
	}
	if r.IntN(4) == 0 {
		f.Fail5xxNext = 1 + r.IntN(2)
	}
	return f
}

// faultsOn reports whether any fault switch is on (a processing delay
// alone is not a fault).
func faultsOn(f salesforcetest.Faults) bool {
	f.ProcessingDelay = 0
	return f != salesforcetest.Faults{}
}

// String is the scenario in one line, for logs.
func (sc scenario) String() string {
	fj, _ := json.Marshal(sc.Faults)
	sync := ""
	if sc.Class == classSync {
		sync = fmt.Sprintf(", mirror %v (third export drops added keys %v), fan-out %v (kill at commit %v), interrupt %v (after %d jobs or requests), exports %d (second: interrupt %v, kill after %d jobs or requests)",
			sc.Mirror, sc.DropAdded, sc.FanOut, sc.KillAtCommit, sc.Interrupt, sc.KillAfterJobs, sc.Versions, sc.Interrupt2, sc.KillAfterJobs2)
	}
	if sc.API == "rest" {
		cj, _ := json.Marshal(sc.CollFaults)
		return fmt.Sprintf("seed %d class %s: api rest, %s %d rows (%d bad), faults %s, collection faults %s, kill after %d requests +%s, clear faults %v, replay faults %v, replay twice %v%s",
			sc.Seed, sc.Class, sc.Op, sc.Rows, sc.BadRows, fj, cj, sc.KillAfterRequests, sc.KillExtra, sc.ClearFaults, sc.ReplayFaults, sc.ReplayTwice, sync)
	}
	return fmt.Sprintf("seed %d class %s: %s %d rows (%d bad) by %d, concurrency %d, lock_retries %d, poll_timeout %s, faults %s, kill after %d jobs +%s, resume kills %d, remap %v, clear faults %v, replay faults %v, replay twice %v%s",
		sc.Seed, sc.Class, sc.Op, sc.Rows, sc.BadRows, sc.JobRows, sc.Concurrency, sc.LockRetries, sc.PollTimeout, fj,
		sc.KillAfterJobs, sc.KillExtra, sc.ResumeKills, sc.Remap, sc.ClearFaults, sc.ReplayFaults, sc.ReplayTwice, sync)
}

// tally counts what the soak did and found.
type tally struct {
	Scenarios, FailedScenarios            int
	FaultScenarios                        int // scenarios with a fault switch on
	FaultRuns                             int // bulkflow invocations (runs, resumes, replays) while a fault switch was on
	Runs                                  int // bulkflow run invocations, resumes included
	Kills, Interrupts                     int // SIGKILLs and SIGINTs that landed on a running process
	KillResumeCycles                      int // a landed kill or interrupt followed by a resume
	Resumes, ConcurrentResumes            int // resumes; pairs started at once
	Replays, RefusedReplays               int // replays; second replays of a consumed file (refused)
	RowsLost, RowsDuplicated, Misreported int // from the final checks
	StepMisreports                        int // steps whose exit code or report contradicted the truth
	Rows                                  int // source rows in all scenarios
	Settles                               int // resumes with --settle-unknown (a person looked)
	FanOuts                               int // scenarios whose sync fans out to a second sync stage
	BetweenCommits                        int // FanOut runs stopped after one stage's commit and before the other's
	DroppedAdded                          int // keys a DropAdded mirror's third export dropped
}

// add adds o to t.
func (t *tally) add(o tally) {
	t.Scenarios += o.Scenarios
	t.FailedScenarios += o.FailedScenarios
	t.FaultScenarios += o.FaultScenarios
	t.FaultRuns += o.FaultRuns
	t.Runs += o.Runs
	t.Kills += o.Kills
	t.Interrupts += o.Interrupts
	t.KillResumeCycles += o.KillResumeCycles
	t.Resumes += o.Resumes
	t.ConcurrentResumes += o.ConcurrentResumes
	t.Replays += o.Replays
	t.RefusedReplays += o.RefusedReplays
	t.RowsLost += o.RowsLost
	t.RowsDuplicated += o.RowsDuplicated
	t.Misreported += o.Misreported
	t.StepMisreports += o.StepMisreports
	t.Rows += o.Rows
	t.Settles += o.Settles
	t.FanOuts += o.FanOuts
	t.BetweenCommits += o.BetweenCommits
	t.DroppedAdded += o.DroppedAdded
}

// String prints the tallies in one line.
func (t tally) String() string {
	return fmt.Sprintf("scenarios %d (failed %d, with faults %d), fault runs %d, runs %d, kills %d, interrupts %d, kill-and-resume cycles %d, resumes %d (concurrent pairs %d, settling %d), replays %d (refused second replays %d), fan-outs %d (stopped between commits %d), mirror keys dropped after a kill %d, rows %d: lost %d, duplicated %d, mis-reported %d, mis-reporting steps %d",
		t.Scenarios, t.FailedScenarios, t.FaultScenarios, t.FaultRuns, t.Runs, t.Kills, t.Interrupts, t.KillResumeCycles, t.Resumes, t.ConcurrentResumes, t.Settles,
		t.Replays, t.RefusedReplays, t.FanOuts, t.BetweenCommits, t.DroppedAdded, t.Rows, t.RowsLost, t.RowsDuplicated, t.Misreported, t.StepMisreports)
}

// play is one scenario being played.
type play struct {
	sc       scenario
	bin, dir string
	file     string // the pipeline file
	srcPath  string
	dlDir    string
	emu      *emulator
	source   map[string]string // key → Name
	rows     [][]string        // source rows as first exported: key, Name, Industry
	stepTime time.Duration

	runID        string
	killAtCommit bool                  // the next kill waits for the commit (KillAtCommit)
	lastSignal   bool                  // the last step was ended by the harness's signal
	faults       salesforcetest.Faults // the emulator's fault switches now
	editedNames  bool                  // a resume with the edited mapping was accepted: stored Names may carry its suffix
	interrupted  bool                  // the run's last attempt was killed or interrupted: rows may be nowhere until a resume
	lastRun      *pipeline.Report      // the last finished attempt of the run
	last         step                  // the last step
	older        map[string][]string   // classSync: earlier Names of a key (records of an earlier export)
	removed      map[string]bool       // classSync mirror: keys the second export dropped (and the third)
	added        []string              // classSync: keys the second export added
	ids          map[string]string     // classSync mirror: record Id by key after the first export
	quietChecked bool                  // quietRun ran and judged the last run
	noCounts     bool                  // classSync's second sync: reports count only what changed
	replayLoaded int64                 // rows the replays say they loaded
	replayRuns   map[string]int64      // loaded by replay run id: a resumed replay accounts for its rows afresh
	steps        int
	log          []string // what happened, for failure messages
	problems     []string
	tally        tally
}

// step is one finished bulkflow invocation.
type step struct {
	kind   string // run, resume, replay
	p      *proc
	code   int
	hung   bool
	signal string    // the signal that landed, if any
	sentAt time.Time // when it was sent
	report *pipeline.Report
}

// lateSignal is how long after a SIGINT was sent a run may still have
// finished without seeing it: the time the signal takes to cancel the
// run's context. A run that decides its status within it finished before
// the Ctrl-C could stop anything, and reporting it succeeded is the truth:
// calling it cancelled would invite a plain re-run of rows all loaded.
const lateSignal = 250 * time.Millisecond

// problem records a broken promise.
func (p *play) problem(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// logf records what happened.
func (p *play) logf(format string, args ...any) {
	p.log = append(p.log, fmt.Sprintf(format, args...))
}

// playScenario plays sc and returns its tallies and the broken promises.
func playScenario(t *testing.T, bin string, sc scenario, stepTime time.Duration) (tally, []string, []string) {
	p := &play{sc: sc, bin: bin, dir: t.TempDir(), stepTime: stepTime}
	if *flagKeep {
		dir, err := os.MkdirTemp("", fmt.Sprintf("soak-%d-", sc.Seed))
		if err != nil {
			t.Fatal(err)
		}
		p.dir = dir
		t.Logf("scenario directory (kept): %s", dir)
	}
	p.tally.Scenarios = 1
	p.tally.Rows = sc.Rows
	if faultsOn(sc.Faults) {
		p.tally.FaultScenarios = 1
	}
	if sc.FanOut {
		p.tally.FanOuts = 1
	}
	p.emu = startEmulator(t, bin, sc.Seed)
	if err := p.setup(); err != nil {
		t.Fatalf("%s: %v", sc, err)
	}
	if err := p.emu.setFaults(sc.Faults); err != nil {
		t.Fatal(err)
	}
	if sc.API == "rest" {
		if err := p.emu.setCollectionFaults(sc.CollFaults); err != nil {
			t.Fatal(err)
		}
	}
	p.faults = sc.Faults
	p.play()
	p.final()
	if len(p.problems) > 0 {
		p.tally.FailedScenarios = 1
	}
	return p.tally, p.problems, p.log
}

// setup writes the source CSV and the pipeline file.
func (p *play) setup() error {
	r := rand.New(rand.NewPCG(p.sc.Seed, 0x5eed))
	p.source = map[string]string{}
	bad := map[int]bool{}
	for len(bad) < p.sc.BadRows {
		bad[r.IntN(p.sc.Rows)] = true
	}
	for i := range p.sc.Rows {
		key := fmt.Sprintf("S%d-%06d", p.sc.Seed, i)
		name := fmt.Sprintf("Soak account %d", i)
		switch r.IntN(20) {
		case 0:
			name = fmt.Sprintf("Acme, \"Soak\" %d", i) // quoted in CSV
		case 1:
			name = fmt.Sprintf("Zoë & Søn %d", i)
		}
		ind := industries[r.IntN(len(industries))]
		if bad[i] {
			ind = badIndustry
		}
		p.source[key] = name
		p.rows = append(p.rows, []string{key, name, ind})
	}
	p.srcPath = filepath.Join(p.dir, "accounts.csv")
	if err := p.writeSource(p.rows); err != nil {
		return err
	}
	p.dlDir = filepath.Join(p.dir, "dl")
	p.file = filepath.Join(p.dir, "soak.yaml")
	if err := os.MkdirAll(filepath.Join(p.dir, "reports"), 0o755); err != nil {
		return err
	}
	return p.writePipeline("Name")
}

// writePipeline writes the pipeline file: the CSV source, for the recut
// class a map stage whose Name is nameExpr, and the Salesforce sink with
// the ledger on, client-credentials auth (tokens renew after expiry) and
// the scenario's chunking.
func (p *play) writePipeline(nameExpr string) error {
	ext := ""
	if p.sc.Op == "upsert" {
		ext = "\n      external_id_field: External_Id__c"
	}
	sinkInput, mapStage := "read", ""
	if p.sc.Class == classRecut {
		sinkInput = "map"
		mapStage = fmt.Sprintf(`  - name: map
    inputs: [read]
    map:
      %s: %s
      Name: %s
      Industry: Industry
`, p.sc.KeyField, p.sc.KeyField, nameExpr)
	}
	state, sync := "", ""
	if p.sc.Class == classSync {
		state = fmt.Sprintf("state: %s/\n", filepath.Join(p.dir, "state"))
		sync = fmt.Sprintf("    sync: {mode: changed, key: %s}\n", p.sc.KeyField)
		if p.sc.Mirror {
			sync = fmt.Sprintf("    sync: {mode: changed, key: %s, delete_missing: true, max_deletes: 50%%}\n", p.sc.KeyField)
		}
		if p.sc.FanOut {
			sync += fmt.Sprintf("  - name: %s\n    inputs: [%s]\n    sink: {type: csv, url: %q}\n    sync: {mode: changed, key: %s}\n",
				archiveStage, sinkInput, filepath.Join(p.dir, "archive", "archive-{run_id}.csv"), p.sc.KeyField)
		}
	}
	y := fmt.Sprintf(`name: soak
%sdead_letter: %s/
stages:
  - name: read
    source:
      type: csv
      url: %s
%s  - name: write
    inputs: [%s]
    sink:
      type: salesforce
      object: Account
      operation: %s%s
      api: %s
      max_job_rows: %d
      concurrency: %d
      lock_retries: %d
      poll_initial: 20ms
      poll_max: 100ms
      poll_timeout: %s
      instance_url: %s
      auth: {client_id: %q, client_secret: %q, login_url: %q}
      ledger: %s
%s`, state, p.dlDir, p.srcPath, mapStage, sinkInput, p.sc.Op, ext, p.sc.API, p.sc.JobRows, p.sc.Concurrency, p.sc.LockRetries, p.sc.PollTimeout,
		p.emu.URL, p.emu.ClientID, p.emu.ClientSecret, p.emu.LoginURL, filepath.Join(p.dir, "ledger"), sync)
	return os.WriteFile(p.file, []byte(y), 0o644)
}

// writeSource writes the source CSV with rows in the given order.
func (p *play) writeSource(rows [][]string) error {
	f, err := os.Create(p.srcPath)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{p.sc.KeyField, "Name", "Industry"})
	w.WriteAll(rows)
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p.srcPath, err)
	}
	return f.Close()
}

// play runs the scenario's steps.
func (p *play) play() {
	sc := p.sc
	switch sc.Class {
	case classFaults, classIncomplete:
		p.first(nil)
	case classKill:
		if p.first(syscall.SIGKILL) {
			for range sc.ResumeKills {
				p.resume(syscall.SIGKILL)
			}
			p.resume(nil)
		}
	case classInterrupt:
		if p.first(syscall.SIGINT) {
			p.resume(nil)
		}
	case classConcurrent:
		if p.first(syscall.SIGKILL) {
			p.concurrentResumes()
			p.resume(nil)
		}
	case classRecut:
		if p.first(syscall.SIGKILL) {
			p.recutResume()
		}
	case classUnknownID:
		p.first(nil)
		p.unknownResume()
	case classREST:
		if sc.KillAfterRequests == 0 {
			p.first(nil)
		} else if p.first(syscall.SIGKILL) {
			p.resume(nil)
		}
	case classSync:
		p.syncCycle(sc.Interrupt, sc.KillAfterJobs)
		if sc.Versions == 2 {
			p.settle()
			p.replayRound()
			if sc.Mirror {
				p.snapshotIDs()
			}
			p.exportV2()
			// A new run: its report and counts start afresh (a sync run
			// loads only the changed and new rows).
			p.runID, p.lastRun, p.replayLoaded, p.replayRuns, p.noCounts = "", nil, 0, nil, true
			p.syncCycle(sc.Interrupt2, sc.KillAfterJobs2)
			if sc.DropAdded {
				p.exportV3()
				p.runID, p.lastRun, p.replayLoaded, p.replayRuns, p.noCounts = "", nil, 0, nil, true
				p.droppedGone(p.bulkflow("run", nil, "run", p.file))
			}
		}
	}
	if sc.Class != classIncomplete {
		p.settle()
	}
	if !sc.ReplayFaults {
		p.setFaults(salesforcetest.Faults{})
	}
	p.replayRound()
	if sc.ReplayTwice {
		p.replayRound()
		p.replayConsumedAgain()
	}
	if sc.Class == classIncomplete {
		p.settle()
	}
	if sc.Class == classSync {
		p.quietRun()
	}
}

// syncCycle runs the sync, SIGINTed (interrupt) or SIGKILLed once the
// emulator has killAfter more jobs, and if that left the run unfinished
// runs the scheduler's next, plain run (scheduledRun).
func (p *play) syncCycle(interrupt bool, killAfter int) {
	sig := os.Signal(syscall.SIGKILL)
	if interrupt {
		sig = syscall.SIGINT
	}
	known := p.ledgerRuns()
	// Only the first cycle's kill waits for the commit.
	p.killAtCommit = p.sc.KillAtCommit && !interrupt && p.runID == "" && len(known) == 0
	p.sc.KillAfterJobs = killAfter
	if p.sc.API == "rest" {
		p.sc.KillAfterRequests = killAfter
	}
	s := p.bulkflow("run", sig, "run", p.file)
	if p.runID == "" {
		for _, id := range p.ledgerRuns() {
			if !slices.Contains(known, id) {
				p.runID = id
			}
		}
	}
	if p.runID == "" {
		if s.signal == "" {
			return // checkStep judged it
		}
		p.logf("killed before the ledger existed: a fresh run")
		p.bulkflow("run", nil, "run", p.file)
		return
	}
	if unfinishedStep(s) {
		if p.sc.FanOut && p.committedStage("write") != p.committedStage(archiveStage) {
			p.tally.BetweenCommits++
			p.logf("stopped between the two sync stages' commits")
		}
		if p.sc.Mirror || p.committed() {
			// An upsert's next plain run starts afresh, as does a run
			// after one killed once its state was committed (nothing to
			// resume: it sends what the manifest lacks).
			p.runID, p.lastRun, p.replayLoaded, p.replayRuns, p.noCounts = "", nil, 0, nil, true
			s := p.bulkflow("run", nil, "run", p.file)
			if !p.sc.Mirror && unfinishedStep(s) {
				// That fresh run may itself leave rows only a person can
				// tell (outcome_unknown): it is in flight, and the person
				// settles it below, before the export changes. Left
				// alone, the next export's run resumed it, was refused
				// as a re-cut, and every run after too (seed 52334).
				p.settleUnknowns()
			}
			return
		}
		p.scheduledRun()
		p.settleUnknowns()
	}
}

// settleUnknowns: rows whose outcome only a person can tell keep the run
// unfinished; the person looks, and settles them (settleUnknown). A resume
// that sends chunks the earlier attempts did not may leave new ones.
func (p *play) settleUnknowns() {
	for range 3 {
		if !p.settleUnknown() {
			break
		}
	}
}

// committed reports whether the run being played committed the sync's
// manifest before it was killed (syncer.Committed: the commit record
// names it, or it was killed between the manifest's write and that
// record): the next plain run does not resume it but starts afresh. The
// oracle, not this, judges what that run stores.
func (p *play) committed() bool {
	return p.committedStage("write") && (!p.sc.FanOut || p.committedStage(archiveStage))
}

// committedStage reports whether the run being played committed the
// manifest of sync stage stage (syncer.Committed).
func (p *play) committedStage(stage string) bool {
	st, err := state.Open(context.Background(), filepath.Join(p.dir, "state")+"/", "soak")
	if err != nil {
		return false
	}
	done, err := syncer.Committed(context.Background(), st, stage, p.runID)
	return err == nil && done
}

// archiveStage is the name of the FanOut scenarios' second sync stage.
const archiveStage = "archive"

// loadedOf returns how many rows a report counts as loaded into Salesforce:
// the stage write's, not a FanOut scenario's archive's too.
func loadedOf(rep *pipeline.Report) int64 {
	for _, st := range rep.Stages {
		if st.Name == "write" {
			return st.Loaded
		}
	}
	return rep.Counts.Loaded
}

// settleUnknown is the person the README asks to look at rows of unknown
// outcome that the run's last attempt dead-lettered (settleArgs), who then
// runs `run FILE --settle-unknown …`, the plain run that resumes the run.
// It returns whether it ran one.
func (p *play) settleUnknown() bool {
	rep := p.lastRun
	if rep == nil || rep.RunID != p.runID {
		return false
	}
	settle := p.settleArgs(rep)
	if len(settle) == 0 {
		return false
	}
	p.tally.Settles++
	p.resumeBy(nil, append([]string{"run", p.file}, settle...)...)
	return true
}

// settleArgs looks up in the org, by key, each row of unknown outcome
// (recovery inspect: result_mismatch, outcome_unknown) that rep's dead
// letters hold, and returns the --settle-unknown flags a person would give
// (nil when there is none): a job or request (_ref) as found — loaded
// when every row of it is stored, absent when none is — or, when some are
// and some are not (a request that saved some rows and failed others, and
// lost its answer), row by row in a copy of the dead letter with a
// _settle column.
func (p *play) settleArgs(rep *pipeline.Report) []string {
	if !slices.ContainsFunc(rep.ErrorGroups, func(g pipeline.ErrorGroup) bool {
		return g.Recovery == pipeline.RecoveryInspect.String()
	}) {
		return nil
	}
	recs, err := p.emu.records("Account")
	if err != nil {
		p.problem("harness: %v", err)
		return nil
	}
	// By key and values: an insert sync stores a new record for each
	// changed row, so the key alone also finds the older record.
	stored := map[string]bool{}
	for _, r := range recs {
		stored[r[p.sc.KeyField]+"\x00"+r["Name"]] = true
	}
	type seen struct{ stored, missing int }
	byRef := map[string]*seen{}
	var files []*dlFile
	for _, dl := range rep.DeadLetters {
		f, err := readDLFile(strings.TrimPrefix(dl, "file://"))
		if err != nil {
			p.problem("harness: %v", err)
			return nil
		}
		files = append(files, f)
		kc, nc, cc, rc := f.col(p.sc.KeyField), f.col("Name"), f.col("_error_code"), f.col("_ref")
		for _, row := range f.rows {
			if pipeline.RecoveryOf(row[cc]) != pipeline.RecoveryInspect {
				continue
			}
			c := byRef[row[rc]]
			if c == nil {
				c = &seen{}
				byRef[row[rc]] = c
			}
			if stored[row[kc]+"\x00"+row[nc]] {
				c.stored++
			} else {
				c.missing++
			}
		}
	}
	var settle []string
	mixed := map[string]bool{}
	for _, ref := range slices.Sorted(maps.Keys(byRef)) {
		switch c := byRef[ref]; {
		case ref != "" && c.missing == 0:
			settle = append(settle, "--settle-unknown", ref+"=loaded")
		case ref != "" && c.stored == 0:
			settle = append(settle, "--settle-unknown", ref+"=absent")
		default:
			p.logf("%q: %d rows stored and %d missing: settled row by row", ref, c.stored, c.missing)
			mixed[ref] = true
		}
	}
	for i, f := range files {
		if len(mixed) == 0 {
			break
		}
		kc, nc, cc, rc := f.col(p.sc.KeyField), f.col("Name"), f.col("_error_code"), f.col("_ref")
		out := [][]string{append(slices.Clone(f.header), "_settle")}
		for _, row := range f.rows {
			as := ""
			if pipeline.RecoveryOf(row[cc]) == pipeline.RecoveryInspect && mixed[row[rc]] {
				as = "absent"
				if stored[row[kc]+"\x00"+row[nc]] {
					as = "loaded"
				}
			}
			out = append(out, append(slices.Clone(row), as))
		}
		path := filepath.Join(p.dir, fmt.Sprintf("settle-%02d-%d.csv", p.steps, i))
		var b strings.Builder
		if err := csv.NewWriter(&b).WriteAll(out); err != nil {
			p.problem("harness: %v", err)
			return nil
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			p.problem("harness: %v", err)
			return nil
		}
		settle = append(settle, "--settle-unknown", "@"+path)
	}
	if len(settle) > 0 {
		p.logf("a person looked up the rows of unknown outcome: %s", strings.Join(settle, " "))
	}
	return settle
}

// liveOf is liveRows of files with recs as the judge sees them. For a
// mirror (upsert), a stored key's dead-letter row is judged by the stored
// Name: the current one means a harmless retry (a fresh run after a kill
// may fail a row whose record the killed run's job had saved; replaying it
// updates the same record), so the row is left out; an earlier one means
// the new values wait in the dead letter, so the stale record is left out.
func (p *play) liveOf(files []*dlFile, recs []map[string]string) ([]liveRow, []map[string]string) {
	live := liveRows(files, p.sc.KeyField)
	if !p.sc.Mirror {
		return live, recs
	}
	current := map[string]bool{} // stored key → its Name is the source's
	for _, r := range recs {
		current[r[p.sc.KeyField]] = r["Name"] == p.source[r[p.sc.KeyField]]
	}
	pending := map[string]bool{}
	live = slices.DeleteFunc(live, func(l liveRow) bool {
		cur, stored := current[l.key]
		pending[l.key] = stored && !cur
		return stored && cur
	})
	recs = slices.DeleteFunc(slices.Clone(recs), func(r map[string]string) bool { return pending[r[p.sc.KeyField]] })
	return live, recs
}

// snapshotIDs records the Id of every stored record by key (mirror).
func (p *play) snapshotIDs() {
	p.waitSettled()
	recs, err := p.emu.records("Account")
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	p.ids = map[string]string{}
	for _, r := range recs {
		p.ids[r[p.sc.KeyField]] = r["Id"]
	}
}

// deadLetters is readDeadLetters of the scenario's dead letters, less, for
// classSync, the files replay refuses: those a later sync run superseded
// (a run that read the whole source after the file's run ended committed
// the sync's manifest, having sent every row of it again), and those of
// the run the state names in flight when it was cancelled or failed (its
// resume settles their rows; a partial one's rows of unknown outcome stay
// where a person finds them).
func (p *play) deadLetters() ([]*dlFile, []string, error) {
	files, problems, err := readDeadLetters(p.dlDir)
	if err != nil || p.sc.Class != classSync {
		return files, problems, err
	}
	// The last sync run that began (committed or not) and the last that
	// committed: replay refuses a file either began after (superseded).
	var c, started struct {
		RunID    string    `json:"run_id"`
		OpenedAt time.Time `json:"opened_at"`
	}
	var in struct {
		RunID     string    `json:"run_id"`
		StartedAt time.Time `json:"started_at"`
		Replay    string    `json:"replay"`
	}
	docs := filepath.Join(p.dir, "state", "soak", "docs")
	for name, v := range map[string]any{"sync-commit-write.json": &c, "sync-start-write.json": &started, "inflight.json": &in} {
		data, err := os.ReadFile(filepath.Join(docs, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(data, v); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return slices.DeleteFunc(files, func(f *dlFile) bool {
		superseded := c.RunID != "" && f.runID != c.RunID && !f.finished.IsZero() && c.OpenedAt.After(f.finished) ||
			started.RunID != "" && f.runID != started.RunID && !f.finished.IsZero() && started.OpenedAt.After(f.finished)
		pending := in.RunID != "" && f.runID == in.RunID && (f.status == pipeline.StatusCancelled || f.status == pipeline.StatusFailed)
		// A sync run in flight (left with rows of unknown outcome: its
		// manifest waits for the resume that settles them) sent every row
		// of the older files again: replay refuses them now (a run is in
		// flight) and once it commits (superseded).
		superseding := in.RunID != "" && in.Replay == "" && f.runID != in.RunID && !f.finished.IsZero() && in.StartedAt.After(f.finished)
		return superseded || pending || superseding
	}), problems, nil
}

// ledgerRuns returns the run ids the ledger holds.
func (p *play) ledgerRuns() []string {
	ents, err := os.ReadDir(filepath.Join(p.dir, "ledger", "soak"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.problem("harness: %v", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// exportV2 re-exports the source for classSync's second sync: about one
// row in ten gets a new Name (an insert sync stores it as a new record:
// the old one stays, p.older), and one in twenty is added.
func (p *play) exportV2() {
	r := rand.New(rand.NewPCG(p.sc.Seed, 0x2))
	p.older = map[string][]string{}
	if p.sc.Mirror {
		// An upsert updates the record in place: no earlier Name stays;
		// one row in twenty leaves the export and must be deleted.
		p.older, p.removed = nil, map[string]bool{}
		p.rows = slices.DeleteFunc(p.rows, func(row []string) bool {
			if r.IntN(20) == 0 {
				p.removed[row[0]] = true
				delete(p.source, row[0])
				return true
			}
			return false
		})
	}
	for _, row := range p.rows {
		if r.IntN(10) == 0 {
			if p.older != nil {
				p.older[row[0]] = append(p.older[row[0]], row[1])
			}
			row[1] += " v2"
			p.source[row[0]] = row[1]
		}
	}
	added := max(1, len(p.rows)/20)
	for i := range added {
		key := fmt.Sprintf("S%d-%06d", p.sc.Seed, p.sc.Rows+i)
		name := fmt.Sprintf("Soak account %d", p.sc.Rows+i)
		p.source[key] = name
		p.rows = append(p.rows, []string{key, name, industries[r.IntN(len(industries))]})
		p.added = append(p.added, key)
	}
	p.tally.Rows += added
	if err := p.writeSource(p.rows); err != nil {
		p.problem("harness: %v", err)
	}
	p.logf("second export: %d names changed, %d rows added, %d dropped", len(p.older), added, len(p.removed))
}

// exportV3 re-exports the source for a DropAdded mirror's third sync:
// about half the keys the second export added leave it (p.removed: the
// mirror must delete their records, also those the second export's killed
// run stored and no run committed).
func (p *play) exportV3() {
	r := rand.New(rand.NewPCG(p.sc.Seed, 0x3))
	drop := map[string]bool{}
	for _, k := range p.added {
		if r.IntN(2) == 0 {
			drop[k] = true
		}
	}
	p.rows = slices.DeleteFunc(p.rows, func(row []string) bool {
		if drop[row[0]] {
			p.removed[row[0]] = true
			delete(p.source, row[0])
			return true
		}
		return false
	})
	if err := p.writeSource(p.rows); err != nil {
		p.problem("harness: %v", err)
	}
	p.tally.DroppedAdded += len(drop)
	p.logf("third export: %d of the %d keys the second added dropped", len(drop), len(p.added))
}

// droppedGone checks the run after exportV3: when it says succeeded and
// held no delete, no record of a key that left the export is stored. A
// later replay of such a key's dead-lettered row would store it again (and
// the quiet run delete it), so the final checks alone could not see a
// record the mirror failed to delete here (keys in doubt: a record the
// second export's killed run stored, whose row then failed).
func (p *play) droppedGone(s step) {
	if s.code != 0 || s.report == nil || len(s.report.SyncDeletesHeld) > 0 {
		return
	}
	recs, err := p.emu.records("Account")
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	var left []string
	for _, r := range recs {
		if k := r[p.sc.KeyField]; p.removed[k] {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		slices.Sort(left)
		p.problem("misreported: the run after the third export said succeeded while %d records of keys that left the export are stored (%s)",
			len(left), strings.Join(left[:min(len(left), 5)], ", "))
		p.tally.StepMisreports++
	}
}

// scheduledRun is the scheduler's next run after an unfinished one
// (unfinishedStep): a plain `bulkflow run FILE`. The sync's manifest does not hold what the
// unfinished run loaded, so the run must resume it (checkStep: its report
// is of run p.runID), or it would send those rows again.
func (p *play) scheduledRun() {
	p.resumeBy(nil, "run", p.file)
}

// quietRun runs the sync once more, faults off, over the same export: once
// every row is stored or waits in a dead letter that a person must look
// at, the manifest holds every stored row, and the run sends nothing
// (exit 0, nothing loaded, no record added). A row the manifest missed
// would be inserted again.
func (p *play) quietRun() {
	p.setFaults(salesforcetest.Faults{})
	files, _, err := p.deadLetters()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	live := slices.DeleteFunc(liveRows(files, p.sc.KeyField), func(l liveRow) bool {
		return pipeline.RecoveryOf(l.code) == pipeline.RecoverySettled // stored, nothing waits
	})
	if len(live) > 0 {
		p.logf("the last run is not checked: %d rows still wait in dead letters (first %s)", len(live), live[0].code)
		return
	}
	before := p.storedTotal()
	s := p.bulkflowRaw("run", nil, "run", p.file)
	after := p.storedTotal()
	if s.p == nil || s.hung {
		return
	}
	loaded := int64(-1) // no report
	if s.report != nil {
		loaded = loadedOf(s.report)
	}
	if s.code != 0 || loaded != 0 || after != before {
		p.problem("misreported: the run after every row was settled exited %d, loaded %d rows and stored %d more records (want 0, 0, 0)\n%s",
			s.code, loaded, after-before, tail(s.p.output()))
		p.tally.StepMisreports++
	}
	p.quietChecked = s.code == 0
}

func (p *play) setFaults(f salesforcetest.Faults) {
	if err := p.emu.setFaults(f); err != nil {
		p.problem("harness: %v", err)
	}
	p.faults = f
}

// reportPath is the report file of the next step.
func (p *play) reportPath(kind string) string {
	p.steps++
	return filepath.Join(p.dir, "reports", fmt.Sprintf("%02d-%s.json", p.steps, kind))
}

// first runs the pipeline, killing it with sig (nil: no kill) at the
// scenario's moment. It returns whether a later resume makes sense (the
// run has an id; a kill before the ledger existed is followed by a fresh
// run).
func (p *play) first(sig os.Signal) bool {
	s := p.bulkflow("run", sig, "run", p.file)
	if s.report != nil {
		p.runID = s.report.RunID
	}
	if p.runID == "" {
		p.runID = p.ledgerRunID()
	}
	if p.runID == "" {
		if s.signal == "" {
			if s.p != nil {
				p.problem("run %s: no report and no ledger run (exit %d)\n%s", p.file, s.code, tail(s.p.output()))
			}
			return false
		}
		p.logf("killed before the ledger existed: a fresh run")
		s = p.bulkflow("run", nil, "run", p.file)
		if s.report != nil {
			p.runID = s.report.RunID
		}
		return false
	}
	return true
}

// ledgerRunID returns the run id the ledger holds ("" if none).
func (p *play) ledgerRunID() string {
	ents, err := os.ReadDir(filepath.Join(p.dir, "ledger", "soak"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.problem("harness: %v", err)
		}
		return ""
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	if len(ids) > 1 {
		p.problem("the ledger holds %d runs after one run: %v", len(ids), ids)
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// resume runs `run --resume RUN_ID`, killed with sig unless nil.
func (p *play) resume(sig os.Signal) step {
	return p.resumeBy(sig, "run", p.file, "--resume", p.runID)
}

// resumeBy runs `bulkflow ARGS`, a step that resumes the run (killed with
// sig unless nil), clearing the faults first if the scenario says so.
func (p *play) resumeBy(sig os.Signal, args ...string) step {
	if p.sc.ClearFaults {
		p.setFaults(salesforcetest.Faults{ProcessingDelay: p.sc.Faults.ProcessingDelay})
	}
	p.tally.Resumes++
	if p.lastSignal {
		p.tally.KillResumeCycles++
		p.lastSignal = false
	}
	return p.bulkflow("resume", sig, args...)
}

// concurrentResumes starts two resumes of the run at once: at most one may
// upload; neither may exit 0 while a row is stored twice.
func (p *play) concurrentResumes() {
	p.tally.ConcurrentResumes++
	p.tally.Resumes += 2
	if p.lastSignal {
		p.tally.KillResumeCycles++
		p.lastSignal = false
	}
	var ps []*proc
	var reps []string
	for range 2 {
		rp := p.reportPath("resume")
		pr, err := startProc(p.bin, p.dir, "run", p.file, "--resume", p.runID, "--report", rp, "--progress", "none")
		if err != nil {
			p.problem("harness: %v", err)
			return
		}
		p.tally.Runs++
		if faultsOn(p.faults) {
			p.tally.FaultRuns++
		}
		ps, reps = append(ps, pr), append(reps, rp)
	}
	steps := make([]step, len(ps))
	for i, pr := range ps {
		steps[i] = step{kind: "resume", p: pr}
		steps[i].code, steps[i].hung = pr.wait(p.stepTime)
		if steps[i].hung {
			p.problem("%s did not finish within %s (killed)\n%s", pr.command(), p.stepTime, tail(pr.output()))
		}
		steps[i].report = p.readReport(reps[i])
		p.logf("concurrent %s: exit %d%s", pr.command(), steps[i].code, reportLine(steps[i].report))
	}
	for _, s := range steps {
		p.checkStep(s, false)
	}
}

// editedSuffix is what the edited mapping of the recut class appends to
// Name.
const editedSuffix = " (edited)"

// records returns the stored Account records; once an edited mapping was
// accepted, Names lose its suffix (either value is the source row's).
func (p *play) records() ([]map[string]string, error) {
	recs, err := p.emu.records("Account")
	if p.editedNames {
		for _, r := range recs {
			r["Name"] = strings.TrimSuffix(r["Name"], editedSuffix)
		}
	}
	if len(p.older) > 0 {
		// An insert sync keeps the records of earlier exports: the truth
		// about the current export is the rest (olderCopies checks them).
		recs = slices.DeleteFunc(recs, func(r map[string]string) bool { return slices.Contains(p.older[r[p.sc.KeyField]], r["Name"]) })
	}
	if len(p.removed) > 0 {
		// A mirror deletes them once a run ends clean (final checks).
		recs = slices.DeleteFunc(recs, func(r map[string]string) bool { return p.removed[r[p.sc.KeyField]] })
	}
	return recs, err
}

// olderCopies returns how many records are extra copies of an earlier
// export's row (a key with an earlier Name stored more than once).
func (p *play) olderCopies() (int, error) {
	recs, err := p.emu.records("Account")
	if err != nil {
		return 0, err
	}
	n := map[string]int{}
	extra := 0
	for _, r := range recs {
		if k := r[p.sc.KeyField]; slices.Contains(p.older[k], r["Name"]) {
			if n[k+"\x00"+r["Name"]]++; n[k+"\x00"+r["Name"]] > 1 {
				extra++
			}
		}
	}
	return extra, nil
}

// recutResume changes what the chunks hold and resumes: the source
// re-exported in another order, or (Remap) a mapping edited since the
// first attempt. The chunks differ from the ledger's, so the resume must
// stop before any upload with exit 2 (issue 15). After a refusal the
// original export and pipeline are restored and the run resumed again, as
// a user would.
func (p *play) recutResume() {
	var change, restore func() error
	if p.sc.Remap {
		change = func() error { return p.writePipeline(`Name + "` + editedSuffix + `"`) }
		restore = func() error { return p.writePipeline("Name") }
	} else {
		r := rand.New(rand.NewPCG(p.sc.Seed, 0x5ca1e))
		shuffled := slices.Clone(p.rows)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		change = func() error { return p.writeSource(shuffled) }
		restore = func() error { return p.writeSource(p.rows) }
	}
	if err := change(); err != nil {
		p.problem("harness: %v", err)
		return
	}
	// A resume that accepts the edited mapping (no chunk it cuts differs
	// from one an earlier attempt sent) loads the rows still to load with
	// it, and the check right after that step must already allow them
	// (it failed seeds 14133 and 14157 so, with 0 rows lost or
	// duplicated): set before the step, kept only if it was accepted. A
	// refused resume must load nothing, which the checks after the next
	// (restored) resume see with the suffix counted again.
	wasEdited := p.editedNames
	p.editedNames = wasEdited || p.sc.Remap
	s := p.resume(nil)
	if err := restore(); err != nil {
		p.problem("harness: %v", err)
		return
	}
	if s.p == nil || s.code != 0 && s.code != 3 {
		p.editedNames = wasEdited
	}
	if s.p != nil && s.code != 0 && s.code != 3 {
		if s.code != 2 {
			p.problem("misreported: the re-cut resume stopped with exit %d, want 2 (stopped before any upload)\n%s", s.code, tail(s.p.output()))
			p.tally.StepMisreports++
		}
		p.logf("the re-cut resume stopped (exit %d): resume with the original export and pipeline", s.code)
		p.resume(nil)
	}
}

// unknownResume resumes an id no run ever had: it must be refused before
// any row moves (no report with rows read, an exit code other than 0 and
// 3) and must store nothing.
func (p *play) unknownResume() {
	before := p.storedTotal()
	id := fmt.Sprintf("20260101T000000Z-%08x", p.sc.Seed)
	p.tally.Resumes++
	s := p.bulkflowRaw("resume", nil, "run", p.file, "--resume", id)
	after := p.storedTotal()
	if s.p != nil && (s.code == 0 || s.code == 3 || after != before || (s.report != nil && s.report.Counts.Read > 0)) {
		p.problem("misreported: --resume %s (an id no run had) exited %d, read %d rows and stored %d more records (want a refusal before any row moves)\n%s",
			id, s.code, readCount(s.report), after-before, tail(s.p.output()))
		p.tally.StepMisreports++
	}
}

// readCount is a report's rows read (0 without a report).
func readCount(rep *pipeline.Report) int64 {
	if rep == nil {
		return 0
	}
	return rep.Counts.Read
}

// settle resumes the run once more if its dead letters hold rows whose
// job's outcome is unknown (job_incomplete: the documented recovery is
// --resume).
func (p *play) settle() {
	if p.runID == "" {
		return
	}
	files, _, err := p.deadLetters()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	for _, l := range liveRows(files, p.sc.KeyField) {
		if pipeline.RecoveryOf(l.code) == pipeline.RecoveryResume && strings.Contains(l.file, p.runID) {
			p.logf("the run's dead letters hold %s rows: resume to settle them", l.code)
			p.setFaults(salesforcetest.Faults{})
			p.resume(nil)
			return
		}
	}
}

// replayRound replays every live dead-letter file once, as a user told
// "replay your dead letters" would: --all (with the Industry fix if some
// row needs it) when no row's outcome is unknown or contradicted, else the
// default (retryable rows only; replay must keep the others).
func (p *play) replayRound() {
	p.waitSettled()
	files, _, err := p.deadLetters()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	for _, f := range files {
		if f.consumed != nil {
			continue
		}
		all, fix := true, false
		cc := f.col("_error_code")
		for _, row := range f.rows {
			switch pipeline.RecoveryOf(row[cc]) {
			case pipeline.RecoveryResume, pipeline.RecoveryInspect:
				all = false
			case pipeline.RecoveryFix:
				fix = true
			}
		}
		args := []string{"replay", f.path, "--pipeline", p.file}
		if all {
			args = append(args, "--all")
			if fix {
				args = append(args, "--map", `Industry="Other"`)
			}
		}
		p.tally.Replays++
		r := p.bulkflow("replay", nil, args...)
		p.finishReplay(args, r)
	}
}

// finishReplay: a replay of an insert sync that left rows of unknown
// outcome is in flight, and every run of the pipeline is refused until it
// finishes; the person resumes it, settling the rows only a person can
// tell (settleArgs), at most a few times.
func (p *play) finishReplay(args []string, s step) {
	if p.sc.Class != classSync || p.sc.Mirror {
		return
	}
	for range 3 {
		rep := s.report
		if rep == nil || !unfinishedStep(s) {
			return
		}
		// The scheduler's next run comes first: while the replay is in
		// flight it must be refused and send nothing.
		before := p.storedTotal()
		if r := p.bulkflowRaw("run", nil, "run", p.file); r.p != nil && (r.code != 2 || p.storedTotal() != before) {
			p.problem("misreported: %s while replay %s is unfinished exited %d and stored %d more records (want 2 and 0)\n%s",
				r.p.command(), rep.RunID, r.code, p.storedTotal()-before, tail(r.p.output()))
			p.tally.StepMisreports++
		}
		resume := append(slices.Clone(args), "--resume", rep.RunID)
		if settle := p.settleArgs(rep); len(settle) > 0 {
			p.tally.Settles++
			resume = append(resume, settle...)
		} else if !slices.ContainsFunc(rep.ErrorGroups, func(g pipeline.ErrorGroup) bool { return g.Recovery == pipeline.RecoveryResume.String() }) {
			return
		}
		p.setFaults(salesforcetest.Faults{ProcessingDelay: p.faults.ProcessingDelay})
		p.tally.Replays++
		s = p.bulkflow("replay", nil, resume...)
	}
}

// replayConsumedAgain replays a consumed file a second time: it must be
// refused (exit 2) and store nothing.
func (p *play) replayConsumedAgain() {
	files, _, err := p.deadLetters()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	for _, f := range files {
		if f.consumed == nil {
			continue
		}
		before := p.storedTotal()
		p.tally.RefusedReplays++
		s := p.bulkflowRaw("replay", nil, "replay", f.path, "--pipeline", p.file)
		if after := p.storedTotal(); s.code != 2 || after != before {
			p.problem("misreported: a second replay of %s exited %d and stored %d more records (want 2 and 0)", f.path, s.code, after-before)
			p.tally.StepMisreports++
		}
		return
	}
}

// bulkflow runs one step and checks it against the truth.
func (p *play) bulkflow(kind string, sig os.Signal, args ...string) step {
	s := p.bulkflowRaw(kind, sig, args...)
	if s.signal != "SIGKILL" {
		p.checkStep(s, true)
	}
	return s
}

// bulkflowRaw runs one step: bulkflow ARGS --report R --progress none
// (runs and resumes), killed with sig at the scenario's moment.
func (p *play) bulkflowRaw(kind string, sig os.Signal, args ...string) step {
	rp := p.reportPath(kind)
	args = append(args, "--report", rp)
	if kind != "replay" {
		args = append(args, "--progress", "none")
		p.tally.Runs++
	}
	s := step{kind: kind}
	if faultsOn(p.faults) {
		p.tally.FaultRuns++
	}
	pr, err := startProc(p.bin, p.dir, args...)
	if err != nil {
		p.problem("harness: %v", err)
		return s
	}
	s.p = pr
	if sig != nil {
		p.killAtMoment(pr, sig, &s)
	}
	s.code, s.hung = pr.wait(p.stepTime)
	if s.hung {
		p.problem("%s did not finish within %s (killed)\n%s", pr.command(), p.stepTime, tail(pr.output()))
	}
	s.report = p.readReport(rp)
	if s.signal == "SIGINT" && !s.hung {
		p.checkInterrupted(s)
	}
	what := ""
	if s.signal != "" {
		what = " after " + s.signal
	}
	p.logf("%s: exit %d%s%s", pr.command(), s.code, what, reportLine(s.report))
	p.lastSignal = s.signal != ""
	if s.signal != "" && kind != "replay" {
		p.interrupted = true
	}
	p.last = s
	return s
}

// unfinishedStep reports whether a run step left its run unfinished: it
// was killed, or ended cancelled or failed, or left rows of unknown
// outcome (recovery resume or inspect). (A signal can land after the run
// decided: it then finished.)
func unfinishedStep(s step) bool {
	r := s.report
	if s.signal == "SIGKILL" || r == nil || r.Status == pipeline.StatusCancelled || r.Status == pipeline.StatusFailed {
		return true
	}
	for _, g := range r.ErrorGroups {
		if g.Recovery == pipeline.RecoveryResume.String() || g.Recovery == pipeline.RecoveryInspect.String() {
			return true
		}
	}
	return false
}

// killAtMoment sends sig once the emulator has KillAfterJobs more jobs
// (classREST: KillAfterRequests more collection requests) than when the
// process started, KillExtra later, unless it exited first.
func (p *play) killAtMoment(pr *proc, sig os.Signal, s *step) {
	if p.killAtCommit {
		p.killAtCommit = false
		p.killOnCommit(pr, s)
		return
	}
	count, after := p.emu.jobCount, p.sc.KillAfterJobs
	if p.sc.API == "rest" {
		count, after = p.emu.collectionRequests, p.sc.KillAfterRequests
	}
	base, _ := count()
	deadline := time.Now().Add(p.stepTime)
	for !pr.exited() && time.Now().Before(deadline) {
		n, err := count()
		if err != nil {
			p.problem("harness: %v", err)
			return
		}
		if n-base >= after {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(p.sc.KillExtra)
	if pr.exited() {
		p.logf("%s finished before the %s", pr.command(), sig)
		return
	}
	sent := time.Now()
	if err := pr.cmd.Process.Signal(sig); err != nil {
		return // it exited meanwhile
	}
	if sig == syscall.SIGINT {
		s.signal, s.sentAt = "SIGINT", sent
		p.tally.Interrupts++
		// Ctrl-C: the run must stop by itself, write its report and say
		// it was cancelled (checked with the report: see checkInterrupted).
		if _, hung := pr.wait(p.stepTime); hung {
			p.problem("%s did not stop within %s after SIGINT\n%s", pr.command(), p.stepTime, tail(pr.output()))
		}
		return
	}
	s.signal = "SIGKILL"
	p.tally.Kills++
}

// killOnCommit SIGKILLs pr as soon as the commit record of the stage write
// changes (KillAtCommit), unless pr exits first.
func (p *play) killOnCommit(pr *proc, s *step) {
	record := filepath.Join(p.dir, "state", "soak", "docs", "sync-commit-write.json")
	stamp := func() string {
		fi, err := os.Stat(record)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	}
	before := stamp()
	deadline := time.Now().Add(p.stepTime)
	for stamp() == before {
		if pr.exited() || time.Now().After(deadline) {
			p.logf("%s finished before its commit's SIGKILL", pr.command())
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
	if err := pr.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return // it exited meanwhile
	}
	s.signal = "SIGKILL"
	p.tally.Kills++
}

// checkInterrupted checks the exit of a step that got a SIGINT: not 0,
// unless its report says it succeeded and it decided so before the signal
// could have cancelled it (lateSignal): a Ctrl-C that lands while the run
// writes its report changes nothing.
func (p *play) checkInterrupted(s step) {
	if s.code != 0 {
		return
	}
	if r := s.report; r != nil && r.Status == pipeline.StatusSucceeded && r.FinishedAt.Before(s.sentAt.Add(lateSignal)) {
		p.logf("%s: succeeded %s after the SIGINT was sent: it had decided before the signal landed", s.p.command(), r.FinishedAt.Sub(s.sentAt).Round(time.Millisecond))
		return
	}
	p.problem("misreported: %s exited 0 after SIGINT\n%s", s.p.command(), tail(s.p.output()))
	p.tally.StepMisreports++
}

// readReport reads a report file (nil if the step wrote none).
func (p *play) readReport(path string) *pipeline.Report {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rep pipeline.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		p.problem("report %s: %v", path, err)
		return nil
	}
	return &rep
}

// checkStep checks a finished (not killed) step against the truth: its
// exit code matches its status; a step that says succeeded or exits 0
// left no row twice (and, for runs, none nowhere); with counts, the run
// report's loaded rows plus the replays' equal the stored rows (up to the
// rows whose outcome only a resume can settle); and, once the run's last
// attempt ended by itself, every row is stored once or in one live dead
// letter.
func (p *play) checkStep(s step, counts bool) {
	if s.p == nil || s.hung {
		return
	}
	p.waitSettled()
	recs, err := p.records()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	files, fileProblems, err := p.deadLetters()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	live, recs := p.liveOf(files, recs)
	byKey, distinct, extra := storedCounts(p.source, p.sc.KeyField, recs)
	dups := extra
	for _, n := range byKey {
		dups += max(n-1, 0)
	}
	misreport := func(format string, args ...any) {
		p.tally.StepMisreports++
		p.problem("misreported: %s (exit %d): %s\n%s", s.p.command(), s.code, fmt.Sprintf(format, args...), tail(s.p.output()))
	}
	rep := s.report
	if rep != nil && s.kind != "replay" && (p.runID == "" || rep.RunID == p.runID) {
		p.runID = rep.RunID
		// The run's last attempt ended by itself, or was cancelled and
		// accounted for every row it read.
		p.interrupted = false
	}
	if !p.interrupted {
		p.judgeBetween(s, recs, live, fileProblems)
	}
	if rep == nil {
		if s.code == 0 {
			misreport("exit 0 without a report")
		}
		return
	}
	// Exit codes (README): 0 succeeded, 3 partial, 1 failed or cancelled;
	// 2 when nothing ran, which a run refused before any upload (a
	// re-cut resume, issue 15) reports as failed with nothing loaded.
	switch {
	case rep.Status == pipeline.StatusSucceeded && s.code == 0,
		rep.Status == pipeline.StatusPartial && s.code == 3,
		rep.Status == pipeline.StatusFailed && s.code == 1,
		rep.Status == pipeline.StatusFailed && s.code == 2 && loadedOf(rep) == 0,
		rep.Status == pipeline.StatusCancelled && s.code == 1:
	default:
		misreport("status %q with exit %d", rep.Status, s.code)
	}
	if !rep.Counts.Balanced() {
		misreport("counts do not balance: %+v", rep.Counts)
	}
	if p.faults.DuplicateResultRow && rep.Status == pipeline.StatusSucceeded && loadedOf(rep) > 0 {
		misreport("every job's results listed a row twice, yet the run says succeeded")
	}
	if s.code == 0 || rep.Status == pipeline.StatusSucceeded {
		if dups > 0 {
			misreport("said %s while %d records are extra copies", rep.Status, dups)
		}
		if s.kind != "replay" && distinct != len(p.source) {
			misreport("said %s while %d of %d source rows are stored", rep.Status, distinct, len(p.source))
		}
	}
	if s.kind != "replay" && rep.RunID != p.runID {
		misreport("report of run %s, want %s", rep.RunID, p.runID)
		return
	}
	if s.kind != "replay" && rep.Counts.Read != int64(len(p.source)) && rep.Status != pipeline.StatusCancelled {
		misreport("read %d rows, the source has %d", rep.Counts.Read, len(p.source))
	}
	switch {
	case s.kind == "replay":
		if p.replayRuns == nil {
			p.replayRuns = map[string]int64{}
		}
		p.replayLoaded += loadedOf(rep) - p.replayRuns[rep.RunID]
		p.replayRuns[rep.RunID] = loadedOf(rep)
	case rep.Status != pipeline.StatusCancelled:
		p.lastRun = rep
	}
	if !counts || p.lastRun == nil || p.interrupted || p.noCounts {
		return
	}
	// Rows dead-lettered with an unknown outcome (job_incomplete,
	// outcome_unknown_retry) or with results that contradict the upload
	// (result_mismatch) may be stored or not, and rows a person settled as
	// stored (assumed_loaded) are; every other row the reports count as
	// loaded is. A mirror's live rows are taken before liveOf leaves out
	// those whose record holds their values: a row of unknown outcome that
	// was stored is such a row, and no report counts it as loaded (seed
	// 52118: every job's results listed a row twice, and a late Ctrl-C
	// left the run to end partial).
	unknown := 0
	for _, l := range liveRows(files, p.sc.KeyField) {
		if r := pipeline.RecoveryOf(l.code); (r == pipeline.RecoveryResume || r == pipeline.RecoveryInspect ||
			l.code == pipeline.CodeOutcomeUnknownRetry) && byKey[l.key] == 1 {
			unknown++
		}
	}
	// Rows settled as stored are counted by no report as loaded, whether
	// their file is live or was replayed (replay never sends them).
	for _, f := range files {
		kc, cc := f.col(p.sc.KeyField), f.col("_error_code")
		for _, row := range f.rows {
			if pipeline.RecoveryOf(row[cc]) == pipeline.RecoverySettled && byKey[row[kc]] == 1 {
				unknown++
			}
		}
	}
	if claimed := loadedOf(p.lastRun) + p.replayLoaded; claimed > int64(distinct) || claimed+int64(unknown) < int64(distinct) {
		misreport("the run reports %d loaded and the replays %d, but %d source rows are stored (%d of them dead-lettered with an unknown outcome)",
			loadedOf(p.lastRun), p.replayLoaded, distinct, unknown)
	}
}

// judgeBetween checks the exactly-once promise between steps, allowing
// rows whose outcome only a resume can settle.
func (p *play) judgeBetween(s step, recs []map[string]string, live []liveRow, fileProblems []string) {
	mode := judgeBetween
	if s.report != nil && (s.report.Status == pipeline.StatusCancelled || s.report.Status == pipeline.StatusFailed) {
		mode = judgeCancelled
	}
	v := judge(p.source, p.sc.KeyField, recs, live, mode)
	for _, pr := range fileProblems {
		v.Misreported++
		v.Problems = append(v.Problems, "misreported: "+pr)
	}
	if !v.ok() {
		p.tally.StepMisreports++
		p.problem("after %s (exit %d): %d lost, %d duplicated, %d mis-reported rows:\n  %s", s.p.command(), s.code,
			v.Lost, v.Duplicated, v.Misreported, strings.Join(v.Problems, "\n  "))
	}
}

// waitSettled waits until no job the truth depends on is processing.
func (p *play) waitSettled() {
	ctx, cancel := context.WithTimeout(context.Background(), p.stepTime)
	defer cancel()
	if err := p.emu.waitJobsSettled(ctx, 0); err != nil {
		p.problem("harness: %v", err)
	}
}

// storedTotal returns the number of stored Account records.
func (p *play) storedTotal() int {
	p.waitSettled()
	recs, err := p.records()
	if err != nil {
		p.problem("harness: %v", err)
	}
	return len(recs)
}

// final judges the end state: the emulator's records against the source
// and the live dead letters.
func (p *play) final() {
	p.waitSettled()
	recs, err := p.records()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	files, problems, err := p.deadLetters()
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	for _, pr := range problems {
		p.problem("misreported: %s", pr)
	}
	live, judged := p.liveOf(files, recs)
	v := judge(p.source, p.sc.KeyField, judged, live, judgeFinal)
	if len(p.older) > 0 {
		extra, err := p.olderCopies()
		if err != nil {
			p.problem("harness: %v", err)
		}
		if extra > 0 {
			v.Duplicated += extra
			v.Problems = append(v.Problems, fmt.Sprintf("duplicated: %d extra copies of rows of the first export", extra))
		}
	}
	// (On the REST path no job counts upserts, and an upsert sent twice
	// leaves one record: only inserts show a resend there.)
	if p.sc.Mirror {
		p.mirrorChecks(&v)
	}
	if p.sc.FanOut {
		p.archiveChecks(&v)
	}
	if p.sc.Op == "upsert" && p.sc.API != "rest" && p.sc.Class != classSync {
		// An upsert sent twice leaves one record: the jobs' counters
		// show it. Every successful row of every job is one stored row.
		jobs, err := p.emu.jobs()
		if err != nil {
			p.problem("harness: %v", err)
			return
		}
		_, distinct, _ := storedCounts(p.source, p.sc.KeyField, recs)
		if resent := successes(jobs, "Account") - int64(distinct); resent != 0 {
			v.Duplicated += int(max(resent, 0))
			v.Problems = append(v.Problems, fmt.Sprintf("duplicated: the jobs upserted %d rows successfully, %d source rows are stored: %d upserts of rows already loaded",
				successes(jobs, "Account"), distinct, resent))
			if resent < 0 {
				v.Misreported++
			}
		}
	}
	p.tally.RowsLost += v.Lost
	p.tally.RowsDuplicated += v.Duplicated
	p.tally.Misreported += v.Misreported
	if !v.ok() {
		p.problem("final check: %d lost, %d duplicated, %d mis-reported rows:\n  %s", v.Lost, v.Duplicated, v.Misreported, strings.Join(v.Problems, "\n  "))
	}
}

// archiveChecks adds to v what a FanOut scenario's archive must end with:
// every key of the source in some run's archive file. The CSV sink
// refuses no row, so a key in none was lost by a resume that skipped it.
func (p *play) archiveChecks(v *verdict) {
	files, err := filepath.Glob(filepath.Join(p.dir, "archive", "archive-*.csv"))
	if err != nil || len(files) == 0 {
		p.problem("harness: no archive files (%v)", err)
		return
	}
	archived := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			p.problem("harness: %v", err)
			return
		}
		recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
		if err != nil || len(recs) == 0 {
			p.problem("harness: archive %s: %v", f, err)
			return
		}
		k := slices.Index(recs[0], p.sc.KeyField)
		for _, r := range recs[1:] {
			archived[r[k]] = true
		}
	}
	missing := 0
	for key := range p.source {
		if !archived[key] {
			missing++
		}
	}
	if missing > 0 {
		v.Lost += missing
		v.Problems = append(v.Problems, fmt.Sprintf("lost: %d source keys in no archive file", missing))
	}
}

// mirrorChecks adds to v what a mirror must end with: no record of a row
// that left the export once a clean run (quietRun) has deleted them, and
// every row still exported in the record it had after the first export
// (a mirror that deleted it and created it again would change its Id).
func (p *play) mirrorChecks(v *verdict) {
	recs, err := p.emu.records("Account")
	if err != nil {
		p.problem("harness: %v", err)
		return
	}
	left, moved := 0, 0
	var leftKeys []string
	for _, r := range recs {
		k := r[p.sc.KeyField]
		if p.removed[k] && p.quietChecked {
			left++
			leftKeys = append(leftKeys, k)
		}
		if id, ok := p.ids[k]; ok && !p.removed[k] && id != r["Id"] {
			moved++
		}
	}
	if left > 0 {
		v.Misreported += left
		slices.Sort(leftKeys)
		v.Problems = append(v.Problems, fmt.Sprintf("misreported: %d records of rows that left the export are still stored after a clean mirror run (%s)",
			left, strings.Join(leftKeys[:min(len(leftKeys), 5)], ", ")))
	}
	if moved > 0 {
		v.Lost += moved
		v.Problems = append(v.Problems, fmt.Sprintf("lost: %d records of rows still exported were deleted and created again (new Id)", moved))
	}
}

// successes is the number of rows the ingest jobs of object processed
// without error.
func successes(jobs []salesforcetest.JobInfo, object string) int64 {
	var n int64
	for _, j := range jobs {
		if !j.Query && j.Object == object {
			n += j.NumberRecordsProcessed - j.NumberRecordsFailed
		}
	}
	return n
}

// reportLine summarizes a report for the log.
func reportLine(rep *pipeline.Report) string {
	if rep == nil {
		return " (no report)"
	}
	c := rep.Counts
	return fmt.Sprintf(" run %s %s: read %d loaded %d filtered %d dead-lettered %d", rep.RunID, rep.Status, c.Read, c.Loaded, c.Filtered, c.DeadLettered)
}

// tail returns the last lines of a process's output.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 12 {
		lines = append([]string{"…"}, lines[len(lines)-12:]...)
	}
	return "    | " + strings.Join(lines, "\n    | ")
}

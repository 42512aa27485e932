// Package soak is the exactly-once soak of bulkflow (issue 15, "a soak
// that keeps proving it"). It holds no product code: its tests build the
// real bulkflow binary once, start `bulkflow emulator` as a separate
// process (so that killing a run never kills Salesforce), and play
// randomized scenarios against it, each from a seed:
//
//   - fault switches through POST /__emulator/faults (503s, lock errors,
//     dropped connections, token expiry, processing delay, failed jobs);
//   - `bulkflow run` with insert (the dangerous operation) or upsert and the
//     ledger on, SIGKILLed at a random moment or interrupted (SIGINT, as
//     Ctrl-C), then `run --resume RUN_ID` (sometimes killed again, sometimes
//     two at once, sometimes after the source was re-exported in another
//     order, sometimes with an id no run ever had);
//   - a sync (sync: {mode: changed}, insert) SIGKILLed or interrupted,
//     then the scheduler's plain `bulkflow run FILE`, which must resume
//     the unfinished run; sometimes a second export (names changed, rows
//     added: each changed row a new record, the old one kept) synced the
//     same way; after the replays a last plain run, which must send
//     nothing (the manifest holds every stored row). A third of the insert
//     syncs go through REST creates; half fan out to a second sync stage
//     (a CSV archive), whose manifest commits after the Salesforce one. When a run stays unfinished with rows
//     whose outcome only a person can tell (result_mismatch,
//     outcome_unknown), the harness is that person: it looks each row up
//     in the emulator and runs `run FILE --settle-unknown`, by job or
//     request (_ref) when all its rows agree, else row by row through a
//     copy of the dead letter with a _settle column. A replay left
//     unfinished the same way is finished by `replay --resume`, after the
//     scheduler's plain run, which must be refused and send nothing;
//   - `bulkflow replay` of every live dead-letter file (the files the
//     manifests list and replayed.json does not consume; `--all` with a
//     `--map` fix when no row's outcome is unknown), sometimes a second
//     round, and a second replay of a consumed file, which must be refused.
//
// After every step and at the end the emulator's records
// (GET /__emulator/records/Account) are the truth the harness checks:
// every source row is stored at most once; every row is either stored
// exactly once or in exactly one live dead-letter file; the run report's
// and the replays' loaded counts add up to the stored rows; a step that
// left a row twice or nowhere never says succeeded or exits 0.
//
// The short form runs in the default `go test` (one scenario per class,
// fixed seeds). The long form:
//
//	go test ./cmd/bulkflow/soak/ -run TestSoak -soak.long -soak.runs 280 -soak.seed 1 -v -timeout 3h
//
// Every failing scenario prints its seed and the command that replays it.
// The seed fixes the scenario (operation, rows, chunking, faults, when to
// kill); the moment a kill lands still depends on timing.
//
// The package lives under cmd/bulkflow because it drives that command as
// a user does; it is its own package so that its long processes and flags
// stay out of cmd/bulkflow's tests.
package soak

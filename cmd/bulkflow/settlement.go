package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/blobio"
)

// settlementFile is the name of the document, in the folder of a run's
// lock (the first Salesforce sink's ledger folder of the run, else the
// state store's run-locks folder), that keeps what --settle-unknown
// settled in the run's rows of unknown outcome.
const settlementFile = "settlement.json"

// resumeSettlement returns how the rows of unknown outcome of run runID of
// g, being resumed, are settled: what earlier attempts were told
// (--settle-unknown), with given (this attempt's flag, nil for none) over
// it, and records that for the run's later attempts. It must be called
// under the run's lock.
//
// Why: a resume that settles some rows of a run that stays unfinished
// (another job still running, other rows still unknown) used to keep none
// of its settlements: the next resume, a plain or served one included,
// read those rows' outcome as unknown again and needed every setting
// given anew (issue 23's session notes). A setting now holds for the run
// until it finishes; a later one for the same rows, operation or every
// row replaces it.
func resumeSettlement(ctx context.Context, g *pipeline.Graph, stateLoc, stateName, runID string, given *pipeline.Settlement, log *slog.Logger) (*pipeline.Settlement, error) {
	loc, name, sub := runLockPlace(g, stateLoc, stateName)
	if loc == "" {
		return given, nil // no ledger and no state: nothing a later attempt reads
	}
	root, err := blobio.Parse("", loc)
	if err != nil {
		return nil, fmt.Errorf("settlement of run %s: %w", runID, err)
	}
	where := blobio.Join(root, name, sub, runID, settlementFile)
	var rec pipeline.SettlementRecord
	found, err := blobio.ReadJSON(ctx, where, &rec)
	if err != nil {
		return nil, fmt.Errorf("settlement of run %s: %w", runID, err)
	}
	var earlier *pipeline.Settlement
	if found {
		if earlier, err = pipeline.SettlementOf(rec); err != nil {
			return nil, fmt.Errorf("settlement of run %s (%s): %w", runID, where, err)
		}
	}
	if given == nil {
		if earlier != nil {
			log.Info("settling the run's rows of unknown outcome as an earlier --settle-unknown did: "+earlier.Describe(), "file", where.String())
		}
		return earlier, nil
	}
	s := given.Over(earlier)
	data, err := json.MarshalIndent(s.Record(), "", "  ")
	if err == nil {
		err = blobio.WriteAll(ctx, where, append(data, '\n'))
	}
	if err != nil {
		return nil, fmt.Errorf("record the settlement of run %s: %w", runID, err)
	}
	if earlier != nil {
		log.Info("settling the run's rows of unknown outcome as --settle-unknown says, over what an earlier one did: "+s.Describe(), "file", where.String())
	}
	return s, nil
}

package salesforcesink

import "github.com/bulkflow/bulkflow/pipeline"

// WritesAreFinal reports true: rows are in the org once Write returns (a
// job's results were read), and Close only cleans up, so a failing Close
// must not move them out of "loaded" (see pipeline.FinalWriter).
func (s *Sink) WritesAreFinal() bool { return true }

var _ pipeline.FinalWriter = (*Sink)(nil)

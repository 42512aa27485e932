// Package all registers every sink bulkflow ships, by importing each for its
// side effect. cmd/bulkflow and end-to-end tests import it.
package all

import (
	_ "github.com/bulkflow/bulkflow/sinks/filesink"       // "csv", "jsonl"
	_ "github.com/bulkflow/bulkflow/sinks/parquetsink"    // "parquet"
	_ "github.com/bulkflow/bulkflow/sinks/salesforcesink" // "salesforce"
)

// Package all registers every bulkflow source with
// pipeline.DefaultRegistry. Import it for its side effects:
//
//	import _ "github.com/bulkflow/bulkflow/sources/all"
package all

import (
	_ "github.com/bulkflow/bulkflow/sources/csvsource"        // "csv"
	_ "github.com/bulkflow/bulkflow/sources/parquetsource"    // "parquet"
	_ "github.com/bulkflow/bulkflow/sources/postgres"         // "postgres"
	_ "github.com/bulkflow/bulkflow/sources/salesforcesource" // "salesforce"
)

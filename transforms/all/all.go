// Package all registers every expression transform with the default
// registry: import it for its side effects.
//
//	import _ "github.com/bulkflow/bulkflow/transforms/all"
package all

import (
	_ "github.com/bulkflow/bulkflow/transforms/filter"  // "filter"
	_ "github.com/bulkflow/bulkflow/transforms/mapping" // "map"
)

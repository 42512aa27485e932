// Package changes detects which rows of a scheduled sync are new, changed,
// unchanged or gone since the last successful run, so that
// `sync: {mode: changed, key: External_Id__c}` sends only what changed.
//
// # How it works
//
// A manifest remembers, for every key loaded so far, a hash of the mapped
// row and the destination's record id. A run feeds its rows to a Differ
// (Add), which spools them to sorted chunk files; Diff merges the spooled
// run with the old manifest in key order and reports each key as OpNew,
// OpChanged, OpUnchanged or OpMissing. The caller sends what it wants to
// send and reports each result with Outcome; Commit then merges the old
// manifest, the run and the outcomes into the next manifest:
//
//   - unchanged keys keep their entry;
//   - new and changed keys that were loaded get the new hash (and id);
//   - changed keys that failed keep their old entry, marked unsynced (hash
//     0), so the next run sends them again whatever the data;
//   - new keys that failed are left out, so the next run sees them as new;
//   - missing keys are dropped once deleted, and otherwise kept (mirror mode,
//     the delete is retried) or dropped, as the caller asks.
//
// # Bounded memory
//
// Memory does not grow with the number of keys: rows are buffered up to
// Options.MemLimit bytes, sorted and spilled to temporary files; Diff
// streams a k-way merge (container/heap) of those files against the
// manifest, which is itself a sorted file read sequentially, and writes the
// keys it found new, changed or missing (no rows) to one more file, which
// Commit merges with the manifest and the outcomes. With the
// default 16 MiB limit a run of 10,000,000 keys uses a few dozen MiB of heap
// and disk space about the size of the run's encoded rows.
//
// The external sort and the file formats are written here by hand on
// purpose. No well-kept Go library does a streaming, sorted-merge diff with
// bounded memory, and an embedded key-value store (bbolt, pebble, badger)
// would turn each key of a run into a random write — 10,000,000 of them per
// run, plus compaction — where a sort-and-merge costs a few sequential
// passes over files.
//
// # Key order
//
// Keys are the text of the key field (pipeline.AppendText) and are ordered
// by their bytes (bytes.Compare), not by any collation or numeric value:
// "B" < "a", "10" < "9", and invalid UTF-8 is ordered like any other bytes.
// Diff calls its callback in that order.
//
// # Manifest format (version 1)
//
//	header:  "BFMANIF" 0x01
//	record:  0x01, uvarint len(key), key, uint64 hash (little endian),
//	         uvarint len(id), id           -- strictly ascending by key bytes
//	footer:  0xFF, uint64 record count, uint32 CRC-32 (IEEE) of all record
//	         bytes (from the first record's 0x01 up to the footer's 0xFF),
//	         both little endian, then end of file
//
// Each record starts with a tag byte so that the footer's 0xFF marker can
// never be mistaken for the start of a record (a uvarint's first byte can be
// 0xFF). A hash of 0 marks an entry as unsynced; row hashes that come out as
// 0 are stored as 1.
package changes

// Package pipeline is bulkflow's engine: the portable layer that every
// source, transform and sink plugs into.
//
// It defines the data model (Schema, Batch, Origin), the plugin interfaces
// (Source, Transform, Sink), the Registry that maps plugin type names to
// constructors, and Run, which executes a Graph of named stages connected by
// bounded channels.
//
// The engine owns accounting: every row a source reads ends as loaded (a sink
// accepted it), filtered (a transform dropped it on purpose) or dead-lettered
// (with a reason). Run checks read + fanned_out = loaded + filtered +
// dead_lettered at the end and fails loudly when it does not hold.
//
// Prepare also narrows sources to the columns the graph reads: transforms
// that are ColumnUsers say which input columns their expressions read, and
// sources that are Projectors then return only those (see Plan.project for
// when every column is kept).
//
// Package pipeline never imports a plugin package: plugins import pipeline
// and register themselves in init functions; cmd/bulkflow and tests
// blank-import the */all packages.
package pipeline

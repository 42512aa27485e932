// Package exprenv is the expression language shared by the "map" and
// "filter" transforms: expr-lang/expr (https://expr-lang.org) type-checked
// against the input schema, plus helpers for Salesforce loads.
//
// Expressions name input fields directly (first_name + " " + last_name); a
// field whose name is not an identifier is read as $env["Billing City"]. A
// name that is not a field, a helper or an expr builtin is a compile error,
// so a misspelled field fails Check, not the run. A field shadows a helper
// or builtin of the same name.
//
// Field values have the Go types pipeline documents on its Type constants:
// string, int64, float64, bool, time.Time (date and timestamp), string
// (decimal); null is nil. Results are converted back the same way: every
// integer becomes int64, float32 becomes float64.
//
// Compiled programs are shared by all workers; each worker evaluates them
// with its own Runner (an expr VM and a reused variables map), taken from a
// pool with Env.Runner.
//
// Common expressions (a field name, a helper or upper/lower applied to a
// field, a concatenation, a comparison, c ? a : b) also get a fast path that
// reads the row directly, without the VM or its variables map. It answers
// only when it computes what the VM would; for anything else (a null or a
// value of another type where a string is expected, a helper error) the VM
// runs, so results and errors are the same either way. A field is copied
// into the VM's variables only when a program that reads it runs on the VM.
//
// # Helpers
//
// Besides expr's builtins (upper, lower, len, split, replace, now, ...):
//
//	helper                      result
//	--------------------------  ----------------------------------------------
//	null                        the null value (an empty cell; #N/A once
//	                            written for Salesforce)
//	sfDate(v, layout)           "2006-01-02" text of v: a string parsed with
//	                            the Go layout, or a date/timestamp (its date
//	                            as written, no zone conversion). Null or blank
//	                            gives null; text that does not match the
//	                            layout dead-letters the row.
//	sfDateTime(v, layout, tz)   "2006-01-02T15:04:05.000Z" (UTC) text of v: a
//	                            string parsed with the Go layout, read in the
//	                            IANA zone tz unless the text carries its own
//	                            offset, or a timestamp (converted to UTC). tz
//	                            is required; an unknown literal tz fails
//	                            Check. Null or blank gives null; a mismatch
//	                            dead-letters the row.
//	sfBool(v)                   true for true/t/yes/y/1, false for
//	                            false/f/no/n/0 (any case, spaces ignored); a
//	                            bool as is; the int 1/0. Null or blank gives
//	                            null; anything else dead-letters the row.
//	trim(s) / trim(s, cutset)   s without leading and trailing white space
//	                            (or cutset characters); null gives null.
//	                            Replaces expr's builtin trim, which fails on
//	                            null.
//	coalesce(a, b, ...)         the first argument that is neither null nor
//	                            the empty string; null if none is. Typed as
//	                            its arguments' type when they all agree.
//	regexReplace(s, re, repl)   s with every match of the RE2 pattern re
//	                            replaced by repl ($1, ${name} expand groups);
//	                            null s gives null. Patterns are compiled once;
//	                            an invalid literal pattern fails Check.
//	lookup(table, key)          the value column of the row whose key column
//	                            equals key (as text) in the pipeline's lookup
//	                            table; null when the key is missing or null.
//	                            Tables are loaded when the expression is
//	                            compiled; an undeclared literal table name
//	                            fails Check.
//
// # Errors
//
// Compile returns an *Error whose message is one line naming the problem,
// its column and the expression:
//
//	unknown name "frist_name" (did you mean "first_name"?) at column 1 in: frist_name + " " + last_name
//
// At run time, Runner.Run returns the helper's error (wrapping ErrBadValue
// for unconvertible input) or expr's message, without source snippets.
//
// Arithmetic is checked (arith.go): + - * and unary minus on integers whose
// result does not fit in int64, / and % by zero, and a float result that is
// infinite or NaN although its operands were finite return an error
// wrapping ErrArithmetic (the map and filter transforms dead-letter the row
// as expr_error), never a wrapped or infinite value:
//
//	arithmetic error: integer overflow: 5 * 9223372036854775807 is outside the 64-bit range
//	arithmetic error: division by zero: 10 / 0
package exprenv

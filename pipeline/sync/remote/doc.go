// Package remote lets a change-detecting sync start from, and check
// itself against, what the destination already holds: `sync: {mode:
// changed, key: K, seed: salesforce}` seeds the first manifest from the
// target object's records, and `bulkflow run FILE --reconcile` compares
// the manifest with them (drift).
//
// # Snapshots
//
// Take reads every record of the target object (the sink's input fields,
// the key and the record id) through a Remote, normalises the values and
// spools them in key order with a changes.Differ, so memory stays bounded
// whatever the record count. Seed turns a snapshot into a manifest (key,
// hash of the normalised values, record id); Reconcile merges it with the
// last manifest and reports every synced key whose record changed
// (changed_in_salesforce) or is gone (missing_in_salesforce), optionally
// writing the manifest a fixing run diffs against (changed keys unsynced,
// missing keys left out, so the run sends both again).
//
// # Normalisation
//
// A seeded sync hashes every row through a Normalizer built from the
// target object's describe, in the sink's runs as in snapshots, so that a
// row and the record it became hash alike even where Salesforce stores a
// value differently from how it was sent. Each value becomes a string or
// null, by the field's describe type:
//
//   - all types: null, "" and the sink's null "#N/A" are all null
//     (Salesforce stores empty text as null); CRLF and lone CR become LF
//     (the sink sends them so);
//   - boolean: "true" for true, 1, yes, y, on (any case), otherwise
//     "false"; null is "false" (a checkbox is never null);
//   - int, long, double, currency, percent: the exact decimal without
//     exponent, leading or trailing zeros ("12.50", "1.25e1" and "012.5"
//     are all "12.5"; "-0" is "0"), rounded half away from zero to the
//     field's scale when the describe states a precision (Salesforce
//     rounds what it stores; int and long to whole numbers);
//   - date: YYYY-MM-DD (a datetime sent to a date field keeps its date);
//   - datetime: UTC, truncated to milliseconds,
//     2006-01-02T15:04:05.000Z (a value without a zone is UTC, a date is
//     midnight UTC);
//   - time: 15:04:05.000Z;
//   - picklist: lower case (Salesforce matches picklist values without
//     regard to case): a change of case only is not a change;
//   - multipicklist: values split on ";", trimmed, lower case, sorted,
//     duplicates and empties dropped, joined with ";";
//   - id, reference: an 18-character id is cut to its first 15
//     characters (the last three only encode their case);
//   - every other type (string, textarea, email, phone, url, encrypted,
//     relationship columns such as Parent.External_Id__c): the text as is.
//
// Keys are not normalised: the key of a row is its text, as in every
// sync, and must equal the key Salesforce returns.
//
// A value the sink sends as an empty cell ("" in the source) is one
// Salesforce ignores on update: it never clears a field, so a source ""
// against a Salesforce value stays a difference (map it to null to clear
// the field).
package remote

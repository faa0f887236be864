// Package oma holds the OMA RESTful Network API wire formats that relay/, bridge/ and
// loadtest/ share: the documents in XML (prefixed root, unqualified children, schema
// order) and JSON (root-wrapped, arrays for repeated elements), lenient on input and
// canonical on output (docs/api.md §3), and the requestError fault.
//
// It does no I/O: callers hand it bytes and get bytes back. Everything is safe for
// concurrent use.
package oma

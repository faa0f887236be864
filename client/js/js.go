// Package clientjs embeds notifyrelay.js, the browser client library (an ES
// module, docs/clients.md) that notifyrelay serves at Path.
package clientjs

import _ "embed"

// Source is the module's text.
//
//go:embed notifyrelay.js
var Source []byte

// Path is where notifyrelay serves it (at the root, like /healthz: base_path
// does not apply).
const Path = "/client/notifyrelay.js"

// Package api is the HTTP plumbing that relay/ and bridge/ share on fasthttp: a small
// router that answers 404 and 405 + Allow itself, bearer-token authentication,
// content negotiation, and rendering of OMA requestError faults.
package api

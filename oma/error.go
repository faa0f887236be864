package oma

import (
	"encoding/json"
	"encoding/xml"
	"strings"
)

// RequestError is the OMA fault document (requestError) with the HTTP status it is
// sent with. Exactly one of a service (SVC…) or policy (POL…) exception, chosen by
// the prefix of MessageID.
type RequestError struct {
	Status    int
	MessageID string
	Text      string
	Variables []string
	// Cause is the failure of our own behind a 5xx, for the log; never sent.
	Cause error
}

// Because records the failure behind e (logged where e is answered) and returns e.
func (e *RequestError) Because(err error) *RequestError {
	e.Cause = err
	return e
}

// Unwrap returns the cause, so errors.Is sees through a fault.
func (e *RequestError) Unwrap() error { return e.Cause }

// Error makes RequestError usable as a Go error.
func (e *RequestError) Error() string {
	return e.MessageID + ": " + expand(e.Text, e.Variables)
}

// policy reports whether the fault is a policyException.
func (e *RequestError) policy() bool { return strings.HasPrefix(e.MessageID, "POL") }

// expand fills %1, %2 … for log lines; documents keep the template.
func expand(text string, vars []string) string {
	for i := len(vars); i >= 1; i-- {
		text = strings.ReplaceAll(text, "%"+itoa(i), vars[i-1])
	}
	return text
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

type exceptionBody struct {
	MessageID string   `json:"messageId" xml:"messageId"`
	Text      string   `json:"text" xml:"text"`
	Variables []string `json:"variables,omitempty" xml:"variables"`
}

// Marshal renders the fault in f.
func (e *RequestError) Marshal(f Format) []byte {
	body := exceptionBody{MessageID: e.MessageID, Text: e.Text, Variables: e.Variables}
	if f == XML {
		return e.marshalXML(body)
	}
	key := "serviceException"
	if e.policy() {
		key = "policyException"
	}
	b, _ := json.Marshal(map[string]map[string]exceptionBody{"requestError": {key: body}})
	return b
}

func (e *RequestError) marshalXML(body exceptionBody) []byte {
	type doc struct {
		XMLName xml.Name       `xml:"common:requestError"`
		NS      string         `xml:"xmlns:common,attr"`
		Service *exceptionBody `xml:"serviceException,omitempty"`
		Policy  *exceptionBody `xml:"policyException,omitempty"`
	}
	d := doc{NS: NSCommon}
	if e.policy() {
		d.Policy = &body
	} else {
		d.Service = &body
	}
	b, _ := xml.Marshal(d)
	return append([]byte(XMLHeader), b...)
}

// Fault texts of the standard exception ids (docs/api.md §2).
const (
	TextSVC0002 = "Invalid input value for message part %1"
	TextSVC0003 = "Invalid input value for message part %1, valid values are %2"
	TextSVC0004 = "No valid addresses provided in message part %1"
	TextSVC0005 = "Correlator %1 specified in message part %2 is a duplicate"
	TextSVC0001 = "A service error occurred. Error code is %1"
	TextSVC2003 = "Invalid access token"
	TextPOL0011 = "Media type %1 not supported"
	TextPOL0001 = "A policy error occurred. Error code is %1"
	TextSVC1012 = "Long polling request for %1 was superseded by a newer request"
	TextPOL1023 = "Channel type %1 is not supported"
)

// InvalidInput is 400 SVC0002 naming the message part that is wrong.
func InvalidInput(part string) *RequestError {
	return &RequestError{Status: 400, MessageID: "SVC0002", Text: TextSVC0002, Variables: []string{part}}
}

// InvalidValue is 400 SVC0003 naming the part and listing its valid values.
func InvalidValue(part string, valid ...string) *RequestError {
	return &RequestError{Status: 400, MessageID: "SVC0003", Text: TextSVC0003, Variables: []string{part, strings.Join(valid, ", ")}}
}

// NotFound is 404 SVC0004 naming the resource (its URL path) that does not exist.
func NotFound(resource string) *RequestError {
	return &RequestError{Status: 404, MessageID: "SVC0004", Text: TextSVC0004, Variables: []string{resource}}
}

// InvalidAddress is 400 SVC0004 naming the part whose address is not valid.
func InvalidAddress(part string) *RequestError {
	return &RequestError{Status: 400, MessageID: "SVC0004", Text: TextSVC0004, Variables: []string{part}}
}

// DuplicateCorrelator is 409 SVC0005.
func DuplicateCorrelator(correlator string) *RequestError {
	return &RequestError{Status: 409, MessageID: "SVC0005", Text: TextSVC0005, Variables: []string{correlator, "clientCorrelator"}}
}

// Unauthorized is 401 SVC2003 (missing or unknown token).
func Unauthorized() *RequestError {
	return &RequestError{Status: 401, MessageID: "SVC2003", Text: TextSVC2003}
}

// Forbidden is 403 POL0001 with a reason code.
func Forbidden(reason string) *RequestError {
	return &RequestError{Status: 403, MessageID: "POL0001", Text: TextPOL0001, Variables: []string{reason}}
}

// MethodNotAllowed is 405 SVC0001; the caller adds the Allow header.
func MethodNotAllowed(method string) *RequestError {
	return &RequestError{Status: 405, MessageID: "SVC0001", Text: TextSVC0001, Variables: []string{"method " + method + " not allowed"}}
}

// NotAcceptable is 406 POL0011: no format in Accept that we can produce.
func NotAcceptable(accept string) *RequestError {
	return &RequestError{Status: 406, MessageID: "POL0011", Text: TextPOL0011, Variables: []string{accept}}
}

// UnsupportedMedia is 415 SVC0002 naming the Content-Type.
func UnsupportedMedia(contentType string) *RequestError {
	part := "Content-Type " + contentType
	if contentType == "" {
		part = "Content-Type (missing)"
	}
	return &RequestError{Status: 415, MessageID: "SVC0002", Text: TextSVC0002, Variables: []string{part}}
}

// HeadersTooLarge is 431 SVC0002: the request line and headers are over the limit.
func HeadersTooLarge() *RequestError {
	return &RequestError{Status: 431, MessageID: "SVC0002", Text: TextSVC0002, Variables: []string{"request headers"}}
}

// Unavailable is 503 SVC0001: a failure of our own (the queue is closing or cannot
// take the write) that a retry may not meet. The one answer for every 503.
func Unavailable() *RequestError {
	return &RequestError{Status: 503, MessageID: "SVC0001", Text: TextSVC0001, Variables: []string{"service unavailable, retry later"}}
}

// Internal is 500 SVC0001: a failure of our own that is not expected to pass.
func Internal() *RequestError {
	return &RequestError{Status: 500, MessageID: "SVC0001", Text: TextSVC0001, Variables: []string{"internal error"}}
}

// TooManyRequests is 429 SVC0001 naming the limit that was reached.
func TooManyRequests(limit string) *RequestError {
	return &RequestError{Status: 429, MessageID: "SVC0001", Text: TextSVC0001, Variables: []string{"too many " + limit}}
}

// TooLarge is 413 SVC0002: the body is over the limit.
func TooLarge(limit int) *RequestError {
	return &RequestError{Status: 413, MessageID: "SVC0002", Text: TextSVC0002, Variables: []string{"body larger than " + itoa(limit) + " bytes"}}
}

// IdempotencyKeyReused is 422 SVC0002: an Idempotency-Key already answered a
// different request (draft-ietf-httpapi-idempotency-key-header: 422).
func IdempotencyKeyReused() *RequestError {
	return &RequestError{Status: 422, MessageID: "SVC0002", Text: TextSVC0002,
		Variables: []string{"Idempotency-Key (already used for a different request)"}}
}

package oma

import "strings"

// Format is a wire format: XML or JSON.
type Format int

// The two formats of the OMA RESTful Network APIs.
const (
	JSON Format = iota
	XML
)

// ContentType is the media type written for a document in f.
func (f Format) ContentType() string {
	if f == XML {
		return "application/xml"
	}
	return "application/json"
}

// String names f as notificationFormat does ("XML", "JSON").
func (f Format) String() string {
	if f == XML {
		return "XML"
	}
	return "JSON"
}

// FormatOf maps a Content-Type (parameters allowed) to a format. ok is false for
// anything that is neither XML nor JSON.
func FormatOf(contentType string) (f Format, ok bool) {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return JSON, true
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		return XML, true
	}
	return JSON, false
}

// Namespaces of the APIs notifyrelay speaks.
const (
	NSCommon  = "urn:oma:xml:rest:netapi:common:1"
	NSChat    = "urn:oma:xml:rest:netapi:chat:1"
	NSChannel = "urn:oma:xml:rest:netapi:notificationchannel:1"
)

// XMLHeader starts every XML document notifyrelay emits.
const XMLHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

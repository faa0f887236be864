package oma

import (
	"encoding/binary"
	"errors"
)

// Envelope is a notification as it sits in the queue: the document, its media type,
// and a tag the producer uses to learn the delivery's outcome (empty when none). The
// relay writes envelopes; the relay's webhook workers and the bridge read them.
type Envelope struct {
	ContentType string
	Body        []byte
	Tag         string
	// Traceparent is the producer's W3C trace context, passed on to webhook
	// receivers; empty when the producer sent none.
	Traceparent string
}

// Version 1 has no traceparent; version 2 adds it after the tag. An envelope
// without one is still written as version 1: the bytes of untraced notifications
// do not change.
const (
	envelopeVersion       = 1
	envelopeVersionTraced = 2
)

// ErrEnvelope is returned for bytes that are not an envelope.
var ErrEnvelope = errors.New("oma: malformed queued envelope")

// Marshal encodes e compactly: version, content type, tag, traceparent (version 2), body.
func (e Envelope) Marshal() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen32+len(e.ContentType)+len(e.Tag)+len(e.Body))
	return append(e.AppendHeader(b), e.Body...)
}

// AppendHeader appends what Marshal writes before the body (Body is ignored), so a
// producer can render the document straight after it, in one buffer.
func (e Envelope) AppendHeader(b []byte) []byte {
	version := byte(envelopeVersion)
	if e.Traceparent != "" {
		version = envelopeVersionTraced
	}
	b = append(b, version)
	b = binary.AppendUvarint(b, uint64(len(e.ContentType)))
	b = append(b, e.ContentType...)
	b = binary.AppendUvarint(b, uint64(len(e.Tag)))
	b = append(b, e.Tag...)
	if version == envelopeVersionTraced {
		b = binary.AppendUvarint(b, uint64(len(e.Traceparent)))
		b = append(b, e.Traceparent...)
	}
	return b
}

// UnmarshalEnvelope decodes what Marshal wrote. Body aliases b.
func UnmarshalEnvelope(b []byte) (Envelope, error) {
	if len(b) == 0 || (b[0] != envelopeVersion && b[0] != envelopeVersionTraced) {
		return Envelope{}, ErrEnvelope
	}
	version := b[0]
	b = b[1:]
	ct, b, ok := field(b)
	if !ok {
		return Envelope{}, ErrEnvelope
	}
	tag, b, ok := field(b)
	if !ok {
		return Envelope{}, ErrEnvelope
	}
	var tp []byte
	if version == envelopeVersionTraced {
		if tp, b, ok = field(b); !ok {
			return Envelope{}, ErrEnvelope
		}
	}
	return Envelope{ContentType: string(ct), Tag: string(tag), Traceparent: string(tp), Body: b}, nil
}

func field(b []byte) (v, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// ValidTraceparent reports whether h is a W3C traceparent this server passes on:
// version 00, a non-zero 32-hex trace id and 16-hex parent id, 2-hex flags
// (https://www.w3.org/TR/trace-context/). Anything else is ignored, as the
// recommendation asks, never refused.
func ValidTraceparent(h string) bool {
	if len(h) != 55 || h[:3] != "00-" || h[35] != '-' || h[52] != '-' {
		return false
	}
	trace, parent, flags := h[3:35], h[36:52], h[53:]
	return lowerHex(trace) && lowerHex(parent) && lowerHex(flags) &&
		trace != "00000000000000000000000000000000" && parent != "0000000000000000"
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

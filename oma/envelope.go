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
}

const envelopeVersion = 1

// ErrEnvelope is returned for bytes that are not an envelope.
var ErrEnvelope = errors.New("oma: malformed queued envelope")

// Marshal encodes e compactly: version, content type, tag, body.
func (e Envelope) Marshal() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen32+len(e.ContentType)+len(e.Tag)+len(e.Body))
	return append(e.AppendHeader(b), e.Body...)
}

// AppendHeader appends what Marshal writes before the body (Body is ignored), so a
// producer can render the document straight after it, in one buffer.
func (e Envelope) AppendHeader(b []byte) []byte {
	b = append(b, envelopeVersion)
	b = binary.AppendUvarint(b, uint64(len(e.ContentType)))
	b = append(b, e.ContentType...)
	b = binary.AppendUvarint(b, uint64(len(e.Tag)))
	return append(b, e.Tag...)
}

// UnmarshalEnvelope decodes what Marshal wrote. Body aliases b.
func UnmarshalEnvelope(b []byte) (Envelope, error) {
	if len(b) == 0 || b[0] != envelopeVersion {
		return Envelope{}, ErrEnvelope
	}
	b = b[1:]
	ct, b, ok := field(b)
	if !ok {
		return Envelope{}, ErrEnvelope
	}
	tag, b, ok := field(b)
	if !ok {
		return Envelope{}, ErrEnvelope
	}
	return Envelope{ContentType: string(ct), Tag: string(tag), Body: b}, nil
}

func field(b []byte) (v, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

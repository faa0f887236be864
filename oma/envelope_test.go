package oma

import (
	"bytes"
	"testing"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	in := Envelope{ContentType: "application/xml", Tag: "chg1/bob", Body: []byte("<a/>")}
	out, err := UnmarshalEnvelope(in.Marshal())
	if err != nil || out.ContentType != in.ContentType || out.Tag != in.Tag || !bytes.Equal(out.Body, in.Body) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, bad := range [][]byte{nil, {9}, {1, 200}, {1, 3, 'a'}} {
		if _, err := UnmarshalEnvelope(bad); err == nil {
			t.Errorf("UnmarshalEnvelope(%v) accepted", bad)
		}
	}
}

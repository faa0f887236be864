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

// A traceparent makes a version 2 envelope; without one the bytes stay version 1.
func TestEnvelopeTraceparent(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	plain := Envelope{ContentType: "application/json", Body: []byte("{}")}.Marshal()
	if plain[0] != 1 {
		t.Errorf("untraced envelope version %d", plain[0])
	}
	in := Envelope{ContentType: "application/json", Tag: "t", Traceparent: tp, Body: []byte("{}")}
	out, err := UnmarshalEnvelope(in.Marshal())
	if err != nil || out.Traceparent != tp || out.Tag != "t" || string(out.Body) != "{}" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for h, ok := range map[string]bool{tp: true, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00": true,
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01": false, "00-00000000000000000000000000000000-00f067aa0ba902b7-01": false,
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01": false, "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01": false,
		"": false, "garbage": false} {
		if ValidTraceparent(h) != ok {
			t.Errorf("ValidTraceparent(%q) = %v", h, !ok)
		}
	}
}

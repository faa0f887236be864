package oma

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
)

// Document is one notification document as a client receives it: one frame of
// an OMA-mode WebSocket or one long-poll answer holds one or several.
type Document struct {
	Format Format
	Root   string // local name of the root element (JSON: its one key, prefix dropped)
	Body   []byte // the whole document, a slice of the input
}

// SplitNotifications turns a received body (one notification document, or a
// notificationList of several, XML or JSON) into its documents, in order. An
// empty notificationList gives none. It is the client side of
// MarshalNotificationList.
func SplitNotifications(b []byte) ([]Document, error) {
	f, ok := SniffFormat(b)
	if !ok {
		return nil, errors.New("notification: neither XML nor JSON")
	}
	if f == JSON {
		return splitJSONList(bytes.TrimSpace(b))
	}
	return splitXMLList(b)
}

func splitJSONList(b []byte) ([]Document, error) {
	root, v, err := jsonRoot(b)
	if err != nil {
		return nil, err
	}
	if root != "notificationList" {
		return []Document{{Format: JSON, Root: root, Body: b}}, nil
	}
	v = bytes.TrimSpace(v)
	var items []json.RawMessage
	switch {
	case len(v) == 0 || string(v) == "null":
	case v[0] == '{':
		items = []json.RawMessage{v}
	default:
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, fmt.Errorf("notificationList: %w", err)
		}
	}
	out := make([]Document, 0, len(items))
	for _, it := range items {
		r, _, err := jsonRoot(it)
		if err != nil {
			return nil, err
		}
		out = append(out, Document{Format: JSON, Root: r, Body: bytes.TrimSpace(it)})
	}
	return out, nil
}

// jsonRoot returns the local name of a root-wrapped object's one key and its value.
func jsonRoot(b []byte) (string, json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return "", nil, fmt.Errorf("notification JSON: %w", err)
	}
	if len(top) != 1 {
		return "", nil, errors.New("notification JSON: not a root-wrapped object")
	}
	for k, v := range top {
		return localName(k), v, nil
	}
	return "", nil, nil
}

func splitXMLList(b []byte) ([]Document, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("notification XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "notificationList" {
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("notification XML: %w", err)
				}
				return []Document{{Format: XML, Root: se.Name.Local, Body: b}}, nil
			}
			return xmlListItems(d, b)
		}
	}
}

// xmlListItems returns each child element of the list d has just opened; each
// carries its own namespace declarations (AppendNotificationListItem keeps them).
func xmlListItems(d *xml.Decoder, b []byte) ([]Document, error) {
	var out []Document
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("notificationList XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("notificationList XML: %w", err)
			}
			out = append(out, Document{Format: XML, Root: t.Name.Local, Body: b[start:d.InputOffset()]})
		case xml.EndElement:
			return out, nil
		}
	}
}

package oma

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
)

// MaxParts bounds the parts of a multipart request.
const MaxParts = 16

// Attachment is one non-root part of a multipart request.
type Attachment struct {
	ContentID   string // without angle brackets
	ContentType string // as the part declared it
	Data        []byte
}

// Multipart is a multipart/form-data request: the root document and its attachments.
type Multipart struct {
	RootFormat  Format
	Root        []byte
	Attachments []Attachment
}

var curly = strings.NewReplacer("\u201c", `"`, "\u201d", `"`)

// ParseMultipart splits a multipart/form-data body (docs/api.md §3). The root
// part is the one named root-fields (curly quotes around the name accepted) or else
// the first XML or JSON part; every other part is an attachment. At most MaxParts
// parts, each at most maxPart bytes. Errors are 400 SVC0002.
func ParseMultipart(contentType string, body []byte, maxPart int) (Multipart, *RequestError) {
	var m Multipart
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil || params["boundary"] == "" {
		return m, InvalidInput("multipart boundary (missing from Content-Type)")
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	rootFound := false
	for i := 0; ; i++ {
		p, err := r.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || i >= MaxParts {
			return m, InvalidInput("multipart body (malformed, or more than " + strconv.Itoa(MaxParts) + " parts)")
		}
		data, err := io.ReadAll(io.LimitReader(p, int64(maxPart)+1))
		if err != nil || len(data) > maxPart {
			return m, InvalidInput("multipart part (larger than " + strconv.Itoa(maxPart) + " bytes)")
		}
		ct := p.Header.Get("Content-Type")
		if f, ok := rootFormat(p, data); ok && !rootFound {
			m.RootFormat, m.Root, rootFound = f, data, true
			continue
		}
		cid := strings.Trim(strings.TrimSpace(p.Header.Get("Content-ID")), "<>")
		m.Attachments = append(m.Attachments, Attachment{ContentID: cid, ContentType: ct, Data: data})
	}
	if !rootFound {
		return m, InvalidInput("root-fields (no XML or JSON part)")
	}
	return m, nil
}

// rootFormat tells whether p can be the root part and in which format: an XML or
// JSON part, or one named root-fields without a usable Content-Type (sniffed).
func rootFormat(p *multipart.Part, data []byte) (Format, bool) {
	if f, ok := FormatOf(p.Header.Get("Content-Type")); ok {
		return f, true
	}
	_, params, err := mime.ParseMediaType(curly.Replace(p.Header.Get("Content-Disposition")))
	if err != nil || params["name"] != "root-fields" {
		return JSON, false
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '<' {
		return XML, true
	}
	return JSON, true
}

// Find returns the attachment an icon value refers to: "cid:<id>", "<id>" or the
// bare id, compared case-insensitively with Content-ID. With no match and exactly
// one attachment, that attachment (the seed's example names it loosely).
func (m *Multipart) Find(ref string) (Attachment, bool) {
	id := strings.Trim(strings.TrimSpace(ref), "<>")
	if len(id) >= 4 && strings.EqualFold(id[:4], "cid:") {
		id = strings.Trim(id[4:], "<>")
	}
	for _, a := range m.Attachments {
		if a.ContentID != "" && strings.EqualFold(a.ContentID, id) {
			return a, true
		}
	}
	if len(m.Attachments) == 1 {
		return m.Attachments[0], true
	}
	return Attachment{}, false
}

// ImageType returns the media type of an image by its first bytes: PNG, JPEG, GIF
// or WebP; ok is false for anything else.
func ImageType(b []byte) (string, bool) {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png", true
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "image/jpeg", true
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "image/gif", true
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "image/webp", true
	}
	return "", false
}

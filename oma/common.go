package oma

import (
	"strconv"
	"unicode/utf8"
)

// Link is common:Link: a related resource named by its relation.
type Link struct {
	Rel  string
	Href string
}

// Link relations of the chat API.
const (
	RelGroupChatSession = "GroupChatSessionInformation"
	RelChatSessionData  = "ChatSessionData"
	RelParticipant      = "Participant"
)

// CallbackReference is common:CallbackReference: where and how to notify.
type CallbackReference struct {
	NotifyURL          string
	CallbackData       string
	NotificationFormat string // "XML", "JSON" or empty
}

// MarshalResourceReference renders common:resourceReference for url in f.
func MarshalResourceReference(f Format, url string) []byte {
	if f == XML {
		b := make([]byte, 0, 160+len(url))
		b = append(b, XMLHeader...)
		b = append(b, `<common:resourceReference xmlns:common="`+NSCommon+`"><resourceURL>`...)
		b = appendXMLText(b, url)
		return append(b, "</resourceURL></common:resourceReference>"...)
	}
	b := make([]byte, 0, 48+len(url))
	b = append(b, `{"resourceReference":{"resourceURL":`...)
	b = appendJSONString(b, url)
	return append(b, "}}"...)
}

// appendXMLText appends s escaped for element text and attribute values.
func appendXMLText(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '"':
			esc = "&quot;"
		case '\'':
			esc = "&apos;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if s[i] < 0x20 { // not allowed in XML 1.0: drop
				esc = ""
			} else {
				continue
			}
		}
		b = append(b, s[last:i]...)
		b = append(b, esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}

// appendXMLElem appends <name>text</name>.
func appendXMLElem(b []byte, name, text string) []byte {
	b = append(b, '<')
	b = append(b, name...)
	b = append(b, '>')
	b = appendXMLText(b, text)
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				if r != '\u2028' && r != '\u2029' {
					i += size
					continue
				}
			}
			b = append(b, s[last:i]...)
			b = append(b, `\u`...)
			b = appendHex4(b, r)
			i += size
			last = i
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xF])
		}
		i++
		last = i
	}
	b = append(b, s[last:]...)
	return append(b, '"')
}

func appendHex4(b []byte, r rune) []byte {
	if r == utf8.RuneError {
		r = 0xFFFD
	}
	s := strconv.FormatInt(int64(r)|0x10000, 16)[1:]
	return append(b, s...)
}

// appendJSONKey appends "name": with a leading comma unless first.
func appendJSONKey(b []byte, name string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

// appendLinksXML appends <link rel=".." href=".."/> elements.
func appendLinksXML(b []byte, links []Link) []byte {
	for _, l := range links {
		b = append(b, `<link rel="`...)
		b = appendXMLText(b, l.Rel)
		b = append(b, `" href="`...)
		b = appendXMLText(b, l.Href)
		b = append(b, `"/>`...)
	}
	return b
}

// appendLinksJSON appends "link":[{"rel":..,"href":..},...] (always an array).
func appendLinksJSON(b []byte, links []Link, first bool) []byte {
	b = appendJSONKey(b, "link", first)
	b = append(b, '[')
	for i, l := range links {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rel":`...)
		b = appendJSONString(b, l.Rel)
		b = append(b, `,"href":`...)
		b = appendJSONString(b, l.Href)
		b = append(b, '}')
	}
	return append(b, ']')
}

package oma

import "time"

// ChatSessionDataNotification is N1, sent to the other participants of a group
// when its session data changes. Links are built with the receiver's {userId}.
type ChatSessionDataNotification struct {
	CallbackData  string
	Links         []Link
	SenderAddress string
	SenderName    string
	Message       ChatSessionData
	DateTime      time.Time
}

// AppendTo appends the document in f to b. It is the hot path of a change (one per
// receiving subscription), hence hand-written: with b of enough capacity it does not
// allocate.
func (n *ChatSessionDataNotification) AppendTo(b []byte, f Format) []byte {
	if f == XML {
		return n.appendXML(b)
	}
	return n.appendJSON(b)
}

// Marshal renders the document in f.
func (n *ChatSessionDataNotification) Marshal(f Format) []byte {
	return n.AppendTo(make([]byte, 0, n.SizeHint()), f)
}

// SizeHint is a capacity that AppendTo fills without growing.
func (n *ChatSessionDataNotification) SizeHint() int {
	s := 420 + len(n.CallbackData) + len(n.SenderAddress) + len(n.SenderName) +
		len(n.Message.Subject) + len(n.Message.Icon) + len(n.Message.Role.Address) + 2*len(n.Message.ResourceURL)
	for _, l := range n.Links {
		s += 32 + len(l.Rel) + len(l.Href)
	}
	return s
}

func (n *ChatSessionDataNotification) appendXML(b []byte) []byte {
	b = append(b, XMLHeader+`<chat:chatSessionDataNotification xmlns:chat="`+NSChat+`">`...)
	b = appendNotificationHeadXML(b, n.CallbackData, n.Links)
	b = appendXMLElem(b, "senderAddress", n.SenderAddress)
	if n.SenderName != "" {
		b = appendXMLElem(b, "senderName", n.SenderName)
	}
	b = append(b, "<message>"...)
	b = n.Message.appendXML(b)
	b = append(b, "</message>"...)
	if !n.DateTime.IsZero() {
		b = append(b, "<dateTime>"...)
		b = n.DateTime.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, "</dateTime>"...)
	}
	return append(b, "</chat:chatSessionDataNotification>"...)
}

func (n *ChatSessionDataNotification) appendJSON(b []byte) []byte {
	b = append(b, `{"chatSessionDataNotification":{`...)
	b, first := appendNotificationHeadJSON(b, n.CallbackData, n.Links)
	b = appendJSONKey(b, "senderAddress", first)
	b = appendJSONString(b, n.SenderAddress)
	if n.SenderName != "" {
		b = appendJSONKey(b, "senderName", false)
		b = appendJSONString(b, n.SenderName)
	}
	b = appendJSONKey(b, "message", false)
	b = n.Message.appendJSON(b)
	if !n.DateTime.IsZero() {
		b = append(b, `,"dateTime":"`...)
		b = n.DateTime.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, '"')
	}
	return append(b, "}}"...)
}

// ChatSessionDataStatusNotification is N2, sent to the changer: whether the change
// reached the other participants.
type ChatSessionDataStatusNotification struct {
	CallbackData string
	Links        []Link
	Status       string // StatusSucceeded or StatusFailed
	ErrorCode    string
	Description  string
}

// Marshal renders the document in f.
func (n *ChatSessionDataStatusNotification) Marshal(f Format) []byte {
	b := make([]byte, 0, 256+len(n.CallbackData)+len(n.Description)+len(n.Links)*128)
	if f == XML {
		b = append(b, XMLHeader+`<chat:chatSessionDataStatusNotification xmlns:chat="`+NSChat+`">`...)
		b = appendNotificationHeadXML(b, n.CallbackData, n.Links)
		b = appendXMLElem(b, "status", n.Status)
		if n.ErrorCode != "" {
			b = appendXMLElem(b, "errorCode", n.ErrorCode)
		}
		if n.Description != "" {
			b = appendXMLElem(b, "description", n.Description)
		}
		return append(b, "</chat:chatSessionDataStatusNotification>"...)
	}
	b = append(b, `{"chatSessionDataStatusNotification":{`...)
	b, first := appendNotificationHeadJSON(b, n.CallbackData, n.Links)
	b = appendJSONKey(b, "status", first)
	b = appendJSONString(b, n.Status)
	if n.ErrorCode != "" {
		b = appendJSONKey(b, "errorCode", false)
		b = appendJSONString(b, n.ErrorCode)
	}
	if n.Description != "" {
		b = appendJSONKey(b, "description", false)
		b = appendJSONString(b, n.Description)
	}
	return append(b, "}}"...)
}

// appendNotificationHeadJSON writes the callbackData and link members every chat
// notification starts with; first reports whether nothing was written.
func appendNotificationHeadJSON(b []byte, callbackData string, links []Link) (_ []byte, first bool) {
	first = true
	if callbackData != "" {
		b = appendJSONKey(b, "callbackData", true)
		b = appendJSONString(b, callbackData)
		first = false
	}
	if len(links) > 0 {
		b = appendLinksJSON(b, links, first)
		first = false
	}
	return b, first
}

// appendNotificationHeadXML writes the callbackData and link elements every chat
// notification starts with.
func appendNotificationHeadXML(b []byte, callbackData string, links []Link) []byte {
	if callbackData != "" {
		b = appendXMLElem(b, "callbackData", callbackData)
	}
	return appendLinksXML(b, links)
}

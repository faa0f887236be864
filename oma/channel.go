package oma

import (
	"strconv"
	"strings"
)

// Channel types notifyrelay serves (OMA ChannelType). OMAPush and NativeChannel
// exist in the spec but are refused with POL1023.
const (
	ChannelLongPolling = "LongPolling"
	ChannelWebSockets  = "WebSockets"
)

// NSXSI is the XML Schema instance namespace (xsi:type on channelData).
const NSXSI = "http://www.w3.org/2001/XMLSchema-instance"

// NotificationChannel is the notificationChannel document. Zero numbers mean "not
// given"; CallbackURL, ResourceURL and ChannelURL are server-set.
type NotificationChannel struct {
	ClientCorrelator string
	ApplicationTag   string
	ChannelType      string
	ChannelURL       string // channelData/channelURL
	MaxNotifications int    // channelData/maxNotifications
	ChannelLifetime  int
	CallbackURL      string
	ResourceURL      string
}

// ParseNotificationChannel reads a create request. Numbers may be JSON strings and
// channelData may carry an extra "type" key (docs/api.md §1); an unknown channelType is
// returned as given for the caller to refuse with POL1023.
func ParseNotificationChannel(f Format, b []byte) (NotificationChannel, *RequestError) {
	n, rerr := ParseDocument(f, b, "notificationChannel", "notificationChannel")
	if rerr != nil {
		return NotificationChannel{}, rerr
	}
	c := NotificationChannel{
		ClientCorrelator: n.Value("clientCorrelator"),
		ApplicationTag:   n.Value("applicationTag"),
		ChannelType:      n.Value("channelType"),
	}
	if c.ChannelType == "" {
		return c, InvalidInput("channelType (missing)")
	}
	var err *RequestError
	if c.MaxNotifications, err = optionalInt(n.Child("channelData"), "maxNotifications", "channelData.maxNotifications"); err != nil {
		return c, err
	}
	if c.ChannelLifetime, err = optionalInt(n, "channelLifetime", "channelLifetime"); err != nil {
		return c, err
	}
	return c, nil
}

// optionalInt reads a non-negative integer child; absent or empty is 0.
func optionalInt(n *Node, name, part string) (int, *RequestError) {
	s := n.Value(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, InvalidInput(part + " (not a non-negative integer)")
	}
	return v, nil
}

// Marshal renders the channel as a root document in f.
func (c NotificationChannel) Marshal(f Format) []byte {
	if f == XML {
		b := append([]byte(XMLHeader), `<nc:notificationChannel xmlns:nc="`+NSChannel+`" xmlns:xsi="`+NSXSI+`">`...)
		b = c.appendXML(b)
		return append(b, "</nc:notificationChannel>"...)
	}
	b := append([]byte(nil), `{"notificationChannel":`...)
	b = c.appendJSON(b)
	return append(b, '}')
}

// appendXML appends the children of a notificationChannel in schema order.
func (c NotificationChannel) appendXML(b []byte) []byte {
	if c.ClientCorrelator != "" {
		b = appendXMLElem(b, "clientCorrelator", c.ClientCorrelator)
	}
	if c.ApplicationTag != "" {
		b = appendXMLElem(b, "applicationTag", c.ApplicationTag)
	}
	b = appendXMLElem(b, "channelType", c.ChannelType)
	b = append(b, `<channelData xsi:type="nc:`+c.ChannelType+`Data">`...)
	if c.ChannelURL != "" {
		b = appendXMLElem(b, "channelURL", c.ChannelURL)
	}
	if c.MaxNotifications > 0 {
		b = appendXMLElem(b, "maxNotifications", strconv.Itoa(c.MaxNotifications))
	}
	b = append(b, "</channelData>"...)
	b = appendXMLElem(b, "channelLifetime", strconv.Itoa(c.ChannelLifetime))
	b = appendXMLElem(b, "callbackURL", c.CallbackURL)
	return appendXMLElem(b, "resourceURL", c.ResourceURL)
}

// appendJSON appends the channel as a JSON object (no type marker on channelData).
func (c NotificationChannel) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	for _, kv := range [][2]string{{"clientCorrelator", c.ClientCorrelator}, {"applicationTag", c.ApplicationTag}} {
		if kv[1] != "" {
			b = appendJSONKey(b, kv[0], first)
			b = appendJSONString(b, kv[1])
			first = false
		}
	}
	b = appendJSONKey(b, "channelType", first)
	b = appendJSONString(b, c.ChannelType)
	b = append(b, `,"channelData":{`...)
	inner := true
	if c.ChannelURL != "" {
		b = appendJSONKey(b, "channelURL", true)
		b = appendJSONString(b, c.ChannelURL)
		inner = false
	}
	if c.MaxNotifications > 0 {
		b = appendJSONKey(b, "maxNotifications", inner)
		b = strconv.AppendInt(b, int64(c.MaxNotifications), 10)
	}
	b = append(b, `},"channelLifetime":`...)
	b = strconv.AppendInt(b, int64(c.ChannelLifetime), 10)
	b = append(b, `,"callbackURL":`...)
	b = appendJSONString(b, c.CallbackURL)
	b = append(b, `,"resourceURL":`...)
	b = appendJSONString(b, c.ResourceURL)
	return append(b, '}')
}

// MarshalNotificationChannelList renders notificationChannelList; in JSON the
// channels are always an array.
func MarshalNotificationChannelList(f Format, list []NotificationChannel, resourceURL string) []byte {
	if f == XML {
		b := append([]byte(XMLHeader), `<nc:notificationChannelList xmlns:nc="`+NSChannel+`" xmlns:xsi="`+NSXSI+`">`...)
		for _, c := range list {
			b = append(b, "<notificationChannel>"...)
			b = c.appendXML(b)
			b = append(b, "</notificationChannel>"...)
		}
		b = appendXMLElem(b, "resourceURL", resourceURL)
		return append(b, "</nc:notificationChannelList>"...)
	}
	b := append([]byte(nil), `{"notificationChannelList":{"notificationChannel":[`...)
	for i, c := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = c.appendJSON(b)
	}
	b = append(b, `],"resourceURL":`...)
	b = appendJSONString(b, resourceURL)
	return append(b, "}}"...)
}

// ParseChannelLifetime reads a notificationChannelLifetime document (PUT body).
func ParseChannelLifetime(f Format, b []byte) (int, *RequestError) {
	n, rerr := ParseDocument(f, b, "notificationChannelLifetime", "notificationChannelLifetime")
	if rerr != nil {
		return 0, rerr
	}
	v, err := strconv.Atoi(n.Value("channelLifetime"))
	if err != nil || v < 1 {
		return 0, InvalidInput("channelLifetime (a positive number of seconds needed)")
	}
	return v, nil
}

// MarshalChannelLifetime renders notificationChannelLifetime.
func MarshalChannelLifetime(f Format, seconds int) []byte {
	if f == XML {
		b := append([]byte(XMLHeader), `<nc:notificationChannelLifetime xmlns:nc="`+NSChannel+`">`...)
		b = appendXMLElem(b, "channelLifetime", strconv.Itoa(seconds))
		return append(b, "</nc:notificationChannelLifetime>"...)
	}
	b := strconv.AppendInt([]byte(`{"notificationChannelLifetime":{"channelLifetime":`), int64(seconds), 10)
	return append(b, "}}"...)
}

// CheckLongPollingRequest accepts an empty body or a longPollingRequestParameters
// document (JSON null or an empty object).
func CheckLongPollingRequest(f Format, b []byte) *RequestError {
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	_, err := ParseDocument(f, b, "longPollingRequestParameters", "longPollingRequestParameters")
	return err
}

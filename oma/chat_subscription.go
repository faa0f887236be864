package oma

import (
	"strconv"
	"strings"
)

// ChatNotificationSubscription is a chat subscription: the create request and the
// resource. Duration is in seconds (0: not given).
type ChatNotificationSubscription struct {
	CallbackReference CallbackReference
	Duration          int
	ClientCorrelator  string
	ResourceURL       string
}

// ParseChatNotificationSubscription reads a subscription create request: notifyURL
// is required (400 SVC0002), notificationFormat is XML or JSON (400 SVC0003),
// duration a non-negative integer given as a number or a string (400 SVC0002).
func ParseChatNotificationSubscription(f Format, b []byte) (ChatNotificationSubscription, *RequestError) {
	var s ChatNotificationSubscription
	n, e := ParseDocument(f, b, "chatNotificationSubscription", "chatNotificationSubscription")
	if e != nil {
		return s, e
	}
	cb := n.Child("callbackReference")
	s.CallbackReference = CallbackReference{
		NotifyURL:    cb.Value("notifyURL"),
		CallbackData: cb.Value("callbackData"),
	}
	if s.CallbackReference.NotifyURL == "" {
		return s, InvalidInput("callbackReference.notifyURL (missing)")
	}
	if nf := cb.Value("notificationFormat"); nf != "" {
		switch strings.ToUpper(nf) {
		case "XML", "JSON":
			s.CallbackReference.NotificationFormat = strings.ToUpper(nf)
		default:
			return s, InvalidValue("notificationFormat", "XML", "JSON")
		}
	}
	if d := n.Value("duration"); d != "" {
		v, err := strconv.Atoi(d)
		if err != nil || v < 0 {
			return s, InvalidInput("duration (a non-negative number of seconds needed)")
		}
		s.Duration = v
	}
	s.ClientCorrelator = n.Value("clientCorrelator")
	return s, nil
}

func (s *ChatNotificationSubscription) elem() elem {
	cb := s.CallbackReference
	kids := []elem{obj("callbackReference", opt(text("notifyURL", cb.NotifyURL),
		text("callbackData", cb.CallbackData), text("notificationFormat", cb.NotificationFormat))...)}
	kids = append(kids, number("duration", s.Duration))
	kids = append(kids, opt(text("clientCorrelator", s.ClientCorrelator), text("resourceURL", s.ResourceURL))...)
	return obj("chatNotificationSubscription", kids...)
}

// Marshal renders the chatNotificationSubscription document.
func (s *ChatNotificationSubscription) Marshal(f Format) []byte {
	return render(f, "chat", NSChat, s.elem())
}

// MarshalChatSubscriptionList renders a chatSubscriptionList with its resourceURL.
func MarshalChatSubscriptionList(f Format, subs []ChatNotificationSubscription, resourceURL string) []byte {
	items := make([]elem, 0, len(subs))
	for i := range subs {
		items = append(items, subs[i].elem())
	}
	kids := []elem{list("chatNotificationSubscription", items)}
	kids = append(kids, opt(text("resourceURL", resourceURL))...)
	return render(f, "chat", NSChat, obj("chatSubscriptionList", kids...))
}

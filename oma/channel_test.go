package oma

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestNotificationChannelParseLenient(t *testing.T) {
	for _, in := range []struct {
		f    Format
		body string
	}{
		{JSON, `{"notificationChannel":{"clientCorrelator":"c","channelType":"LongPolling","channelData":{"maxNotifications":"40","type":"LongPollingData"},"channelLifetime":"7200"}}`},
		{XML, `<nc:notificationChannel xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><clientCorrelator>c</clientCorrelator><channelType>LongPolling</channelType><channelData xsi:type="nc:LongPollingData"><maxNotifications>40</maxNotifications></channelData><channelLifetime>7200</channelLifetime></nc:notificationChannel>`},
	} {
		c, err := ParseNotificationChannel(in.f, []byte(in.body))
		if err != nil || c.ClientCorrelator != "c" || c.ChannelType != "LongPolling" || c.MaxNotifications != 40 || c.ChannelLifetime != 7200 {
			t.Errorf("%v: %+v %v", in.f, c, err)
		}
	}
}

func TestNotificationChannelMarshal(t *testing.T) {
	c := NotificationChannel{ChannelType: ChannelWebSockets, ChannelURL: "ws://h/ws", MaxNotifications: 5,
		ChannelLifetime: 3600, CallbackURL: "http://h/notifications/t", ResourceURL: "http://h/c/1"}
	wantJSON := `{"notificationChannel":{"channelType":"WebSockets","channelData":{"channelURL":"ws://h/ws","maxNotifications":5},"channelLifetime":3600,"callbackURL":"http://h/notifications/t","resourceURL":"http://h/c/1"}}`
	if got := string(c.Marshal(JSON)); got != wantJSON {
		t.Errorf("json:\n%s\nwant\n%s", got, wantJSON)
	}
	x := string(c.Marshal(XML))
	if !strings.Contains(x, `<channelData xsi:type="nc:WebSocketsData"><channelURL>ws://h/ws</channelURL>`) {
		t.Errorf("xml: %s", x)
	}
	if err := xml.Unmarshal([]byte(x), new(struct{})); err != nil {
		t.Errorf("xml not well-formed: %v", err)
	}
	list := string(MarshalNotificationChannelList(JSON, []NotificationChannel{c}, "http://h/c"))
	if !strings.HasPrefix(list, `{"notificationChannelList":{"notificationChannel":[{`) {
		t.Errorf("list: %s", list)
	}
}

func TestNotificationListAndChecks(t *testing.T) {
	docs := [][]byte{[]byte(`<?xml version="1.0"?>` + "\n" + `<x:a xmlns:x="urn:x"/>`), []byte(`<x:b xmlns:x="urn:x"/>`)}
	want := XMLHeader + `<nc:notificationList xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"><x:a xmlns:x="urn:x"/><x:b xmlns:x="urn:x"/></nc:notificationList>`
	if got := string(MarshalNotificationList(XML, docs)); got != want {
		t.Errorf("xml list:\n%s", got)
	}
	if got := string(MarshalNotificationList(JSON, nil)); got != `{"notificationList":[]}` {
		t.Errorf("empty json list: %s", got)
	}
	for _, bad := range []string{`{}`, `{"a":1,"b":2}`, `[1]`, `{"a":`} {
		if CheckNotification(JSON, []byte(bad)) == nil {
			t.Errorf("accepted json %s", bad)
		}
	}
	for _, bad := range []string{`<a>`, `<a/><b/>`, `<!DOCTYPE a><a/>`, strings.Repeat("<a>", 33) + strings.Repeat("</a>", 33)} {
		if CheckNotification(XML, []byte(bad)) == nil {
			t.Errorf("accepted xml %.30s", bad)
		}
	}
	m, err := ParseClientMessage([]byte(`{"ack": 7}`), true)
	if err != nil || m.Kind != "ack" || m.Ack != 7 {
		t.Errorf("ack: %+v %v", m, err)
	}
	if _, err := ParseClientMessage([]byte(`{"ack": 7}`), false); err == nil {
		t.Error("ack accepted in OMA mode")
	}
	if m, err = ParseClientMessage([]byte(`{"connAck":null}`), true); err != nil || m.Kind != "connAck" {
		t.Errorf("connAck: %+v %v", m, err)
	}
}

package oma

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	base  = "http://example.com/exampleAPI/chat/v1/"
	bob   = "tel%3A%2B19585550101"
	alice = "tel%3A%2B19585550100"
)

// emitted lists every document the chat API emits, by golden file name (without
// extension), with the schema in testdata/xsd its XML must validate against.
func emitted() map[string]struct {
	doc    func(Format) []byte
	schema string
} {
	g := base + bob + "/group/sess001"
	links := []Link{{RelGroupChatSession, g}, {RelChatSessionData, g + "/messages/msg002"}}
	at := time.Date(2024, 5, 4, 10, 15, 30, 0, time.UTC)
	n1 := func(d ChatSessionData) func(Format) []byte {
		d.ResourceURL = g + "/messages/msg002"
		n := ChatSessionDataNotification{CallbackData: "abcd", Links: links, SenderAddress: "tel:+19585550100",
			SenderName: "Alice & <Co>", Message: d, DateTime: at}
		return n.Marshal
	}
	ga := base + alice + "/group/sess001"
	n2ok := ChatSessionDataStatusNotification{CallbackData: "abcd", Status: StatusSucceeded,
		Links: []Link{{RelGroupChatSession, ga}, {RelChatSessionData, ga + "/messages/msg002"}}}
	n2fail := ChatSessionDataStatusNotification{Status: StatusFailed, ErrorCode: "NotDelivered",
		Description: "Not delivered to tel:+19585550103",
		Links:       append(n2ok.Links[:2:2], Link{RelParticipant, ga + "/participants/tel%3A%2B19585550103"})}
	copyDoc := ChatSessionData{Kind: DataSubject, Subject: "Weekend trip", Action: ActionSet, ResourceURL: ga + "/messages/msg002"}
	group := GroupChatSessionInformation{Subject: "Trip", Icon: g + "/icon", ClientCorrelator: "g-1", ResourceURL: g,
		Participants: []ParticipantInformation{
			{Address: "tel:+19585550100", Name: "Alice", Role: RoleAdministrator, Status: StatusConnected, ResourceURL: g + "/participants/" + alice},
			{Address: "tel:+19585550101", Role: RoleParticipant, Status: StatusConnected, ResourceURL: g + "/participants/" + bob}}}
	sub := ChatNotificationSubscription{CallbackReference: CallbackReference{NotifyURL: "http://example.com/callBackUrl/cbu111",
		CallbackData: "abcd", NotificationFormat: "XML"}, Duration: 7200, ClientCorrelator: "sub-42", ResourceURL: base + bob + "/subscriptions/sub001"}
	const cd, cm = "chat.xsd", "common.xsd"
	type entry = struct {
		doc    func(Format) []byte
		schema string
	}
	return map[string]entry{
		"n1-subject":         {n1(ChatSessionData{Kind: DataSubject, Subject: "Weekend trip", Action: ActionSet}), cd},
		"n1-icon":            {n1(ChatSessionData{Kind: DataIcon, Icon: g + "/icon", Action: ActionSet}), cd},
		"n1-icon-delete":     {n1(ChatSessionData{Kind: DataIcon, Icon: "invalid@data.invalid", Action: ActionDelete}), cd},
		"n1-role":            {n1(ChatSessionData{Kind: DataRole, Role: ParticipantRole{"tel:+19585550103", RoleAdministrator}, Action: ActionSet}), cd},
		"n2-succeeded":       {n2ok.Marshal, cd},
		"n2-failed":          {n2fail.Marshal, cd},
		"chat-session-data":  {copyDoc.Marshal, cd},
		"resource-reference": {func(f Format) []byte { return MarshalResourceReference(f, ga+"/messages/msg002") }, cm},
		"request-error":      {InvalidValue("action", ActionSet, ActionDelete).Marshal, cm},
		"group":              {group.Marshal, cd},
		"participant-list":   {func(f Format) []byte { return MarshalParticipantList(f, group.Participants, g+"/participants") }, cd},
		"subscription":       {sub.Marshal, cd},
		"subscription-list": {func(f Format) []byte {
			return MarshalChatSubscriptionList(f, []ChatNotificationSubscription{sub}, base+bob+"/subscriptions")
		}, cd},
	}
}

func TestGoldenDocuments(t *testing.T) {
	for name, e := range emitted() {
		for _, f := range []Format{XML, JSON} {
			got := e.doc(f)
			ext := ".json"
			if f == XML {
				ext = ".xml"
			} else if !json.Valid(got) {
				t.Errorf("%s: invalid JSON: %s", name, got)
			}
			golden(t, filepath.Join("testdata", "golden", name+ext), got)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
	}
}

// channelXML lists the notification channel documents, by name, with their schema.
func channelXML() map[string]struct {
	doc    []byte
	schema string
} {
	const nc = "notificationchannel.xsd"
	c := NotificationChannel{ClientCorrelator: "c1", ChannelType: ChannelLongPolling, ChannelURL: "http://h/nc/v1/alice/channels/1/poll",
		MaxNotifications: 32, ChannelLifetime: 3600, CallbackURL: "http://h/notifications/t", ResourceURL: "http://h/nc/v1/alice/channels/1"}
	ws := c
	ws.ChannelType, ws.ChannelURL, ws.ClientCorrelator = ChannelWebSockets, "ws://h/nc/v1/alice/channels/2/ws", ""
	e := emitted()
	n1, n2 := e["n1-subject"].doc(XML), e["n2-failed"].doc(XML)
	type entry = struct {
		doc    []byte
		schema string
	}
	return map[string]entry{
		"channel-longpolling": {c.Marshal(XML), nc},
		"channel-websockets":  {ws.Marshal(XML), nc},
		"channel-list":        {MarshalNotificationChannelList(XML, []NotificationChannel{c, ws}, "http://h/nc/v1/alice/channels"), nc},
		"channel-list-empty":  {MarshalNotificationChannelList(XML, nil, "http://h/nc/v1/alice/channels"), nc},
		"channel-lifetime":    {MarshalChannelLifetime(XML, 600), nc},
		"notification-list":   {MarshalNotificationList(XML, [][]byte{n1, n2, []byte(`<x:other xmlns:x="urn:x"><y/></x:other>`)}), nc},
		"notification-empty":  {MarshalNotificationList(XML, nil), nc},
		"conn-ack":            {MarshalConnAck(XML, 3600), nc},
		"poll-superseded":     {PollSuperseded().Marshal(XML), "common.xsd"},
	}
}

// TestEmittedXMLValidates runs xmllint on every emitted XML document against the
// repository's own schemas (testdata/xsd).
func TestEmittedXMLValidates(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (apt-get install libxml2-utils)")
	}
	docs := channelXML()
	for name, e := range emitted() {
		docs[name] = struct {
			doc    []byte
			schema string
		}{e.doc(XML), e.schema}
	}
	tmp := t.TempDir()
	for name, e := range docs {
		file := filepath.Join(tmp, name+".xml")
		if err := os.WriteFile(file, e.doc, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := xmllint(file, e.schema); err != nil {
			t.Errorf("%s: xmllint: %v\n%s", name, err, out)
		}
	}
}

// TestSchemasRefuse checks that the schemas are not vacuous: documents that break
// them (wrong order, bad enum, missing part) fail.
func TestSchemasRefuse(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (apt-get install libxml2-utils)")
	}
	const chat = `<?xml version="1.0"?><chat:%s xmlns:chat="urn:oma:xml:rest:netapi:chat:1">%s</chat:%[1]s>`
	bad := map[string][2]string{
		"action-case":  {"chat.xsd", fmt.Sprintf(chat, "chatSessionData", "<subject>s</subject><action>Set</action>")},
		"two-choices":  {"chat.xsd", fmt.Sprintf(chat, "chatSessionData", "<subject>s</subject><icon>http://i</icon>")},
		"order":        {"chat.xsd", fmt.Sprintf(chat, "chatSessionDataStatusNotification", "<status>Succeeded</status><link rel=\"a\" href=\"http://h\"/>")},
		"local-time":   {"chat.xsd", fmt.Sprintf(chat, "chatSessionDataNotification", "<senderAddress>tel:+1</senderAddress><message><subject>s</subject></message><dateTime>2024-05-04T10:15:30</dateTime>")},
		"in-list":      {"notificationchannel.xsd", `<nc:notificationList xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1">` + fmt.Sprintf(chat, "chatSessionDataStatusNotification", "<status>Maybe</status>") + `</nc:notificationList>`},
		"no-exception": {"common.xsd", `<common:requestError xmlns:common="urn:oma:xml:rest:netapi:common:1"/>`},
	}
	tmp := t.TempDir()
	for name, b := range bad {
		file := filepath.Join(tmp, name+".xml")
		if err := os.WriteFile(file, []byte(b[1]), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := xmllint(file, b[0]); err == nil {
			t.Errorf("%s: %s validated against %s", name, b[1], b[0])
		}
	}
}

func xmllint(file, schema string) ([]byte, error) {
	return exec.Command("xmllint", "--nonet", "--noout", "--schema", filepath.Join("testdata", "xsd", schema), file).CombinedOutput()
}

func TestN1AppendToDoesNotAllocate(t *testing.T) {
	n := ChatSessionDataNotification{CallbackData: "abcd", SenderAddress: "tel:+19585550100",
		Links:    []Link{{RelGroupChatSession, base + bob + "/group/s"}, {RelChatSessionData, base + bob + "/group/s/messages/m"}},
		Message:  ChatSessionData{Kind: DataSubject, Subject: "x", Action: ActionSet, ResourceURL: base + bob + "/group/s/messages/m"},
		DateTime: time.Now()}
	buf := make([]byte, 0, n.SizeHint())
	for _, f := range []Format{XML, JSON} {
		allocs := testing.AllocsPerRun(100, func() { buf = n.AppendTo(buf[:0], f) })
		if allocs != 0 {
			t.Errorf("%v: %v allocations", f, allocs)
		}
	}
}

func BenchmarkN1Marshal(b *testing.B) {
	n := ChatSessionDataNotification{CallbackData: "abcd", SenderAddress: "tel:+19585550100", SenderName: "Alice",
		Links:    []Link{{RelGroupChatSession, base + bob + "/group/s"}, {RelChatSessionData, base + bob + "/group/s/messages/m"}},
		Message:  ChatSessionData{Kind: DataSubject, Subject: "Weekend trip", Action: ActionSet, ResourceURL: base + bob + "/group/s/messages/m"},
		DateTime: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		_ = n.Marshal(XML)
	}
}

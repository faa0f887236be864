package oma

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
// extension), with the schema its XML must validate against ("" = well-formed only:
// no public schema exists for it).
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
	const cd, cm = "local-draft_chat_sessiondata.xsd", "OMA-SUP-XSD_rest_netapi_common-V1_0-20120417-C.xsd"
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
		"group":              {group.Marshal, ""},
		"participant-list":   {func(f Format) []byte { return MarshalParticipantList(f, group.Participants, g+"/participants") }, ""},
		"subscription":       {sub.Marshal, ""},
		"subscription-list": {func(f Format) []byte {
			return MarshalChatSubscriptionList(f, []ChatNotificationSubscription{sub}, base+bob+"/subscriptions")
		}, ""},
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

// xsdDir finds shared/oma/xsd beside the repository (see its README).
func xsdDir(t *testing.T) string {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	return filepath.Join(strings.TrimSpace(string(out)), "..", "shared", "oma", "xsd")
}

// TestEmittedXMLValidates runs xmllint on every emitted XML document: against the
// schema when one exists, for well-formedness otherwise.
func TestEmittedXMLValidates(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (apt-get install libxml2-utils)")
	}
	dir := xsdDir(t)
	tmp := t.TempDir()
	for name, e := range emitted() {
		file := filepath.Join(tmp, name+".xml")
		if err := os.WriteFile(file, e.doc(XML), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"--nonet", "--noout"}
		if e.schema != "" {
			args = append(args, "--schema", filepath.Join(dir, e.schema))
		}
		cmd := exec.Command("xmllint", append(args, file)...)
		cmd.Env = append(os.Environ(), "XML_CATALOG_FILES="+filepath.Join(dir, "catalog.xml"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: xmllint: %v\n%s", name, err, out)
		}
	}
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

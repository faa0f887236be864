package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"notifyrelay/app/apptest"
)

// Headers over the server's read buffer get a 431 requestError, not a bare text.
func TestHeadersTooLarge(t *testing.T) {
	base := apptest.URL(apptest.Start(t, nil))
	req, _ := http.NewRequest("GET", base+"/notificationchannel/v1/alice/channels", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 5000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 431 || !strings.Contains(string(body), `"SVC0002"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

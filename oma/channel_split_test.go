package oma

import "testing"

// What MarshalNotificationList builds, SplitNotifications takes apart again.
func TestSplitNotificationsRoundTrip(t *testing.T) {
	cases := []struct {
		f    Format
		docs []string
	}{
		{JSON, []string{`{"a:one":{"x":1}}`, `{"two":{"y":"}"}}`}},
		{XML, []string{`<?xml version="1.0"?><c:one xmlns:c="urn:c"><x>1</x></c:one>`, `<two xmlns="urn:t"><y>&lt;</y></two>`}},
	}
	for _, c := range cases {
		var in [][]byte
		for _, d := range c.docs {
			in = append(in, []byte(d))
		}
		got, err := SplitNotifications(MarshalNotificationList(c.f, in))
		if err != nil || len(got) != 2 || got[0].Root != "one" || got[1].Root != "two" || got[0].Format != c.f {
			t.Fatalf("%v: %+v %v", c.f, got, err)
		}
		if one, err := SplitNotifications(got[1].Body); err != nil || len(one) != 1 || string(one[0].Body) != string(got[1].Body) {
			t.Fatalf("%v: an item is not a document of its own: %q %v", c.f, got[1].Body, err)
		}
	}
}

func TestSplitNotificationsSingleAndEmpty(t *testing.T) {
	for body, n := range map[string]int{
		`{"notificationList":[]}`:                      0,
		`{"notificationList":null}`:                    0,
		`<nc:notificationList xmlns:nc="urn:n"/>`:      0,
		` {"chatSessionDataNotification":{"s":"x"}} `:  1,
		`<chat:x xmlns:chat="urn:c"><s>1</s></chat:x>`: 1,
		`{"notificationList":{"one":{}}}`:              1,
	} {
		got, err := SplitNotifications([]byte(body))
		if err != nil || len(got) != n {
			t.Errorf("%s: %d docs %v, want %d", body, len(got), err, n)
		}
	}
	for _, bad := range []string{``, `{"broken`, `{"a":1,"b":2}`, `<a>`, `hello`} {
		if _, err := SplitNotifications([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

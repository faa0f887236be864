package api

import (
	"net/url"
	"strings"
)

// OriginAllowed reports whether a browser page from origin may use the user APIs
// (WebSocket handshakes, CORS): no Origin (not a browser), public's own origin, or
// one listed in allowed ("*": any).
func OriginAllowed(origin, public string, allowed []string) bool {
	if origin == "" {
		return true
	}
	o := normalOrigin(origin)
	if pub, err := url.Parse(public); err == nil && o == strings.ToLower(pub.Scheme+"://"+pub.Host) {
		return true
	}
	for _, a := range allowed {
		if a == "*" || normalOrigin(a) == o {
			return true
		}
	}
	return false
}

// normalOrigin is scheme://host of s in lower case ("" when s is no URL).
func normalOrigin(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
}

package app

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rs/zerolog"
)

// fasthttpLogger takes fasthttp's own log lines (it prints them on stderr with the
// standard logger otherwise) into zerolog. Its connection errors quote the raw
// request they failed on, bearer tokens and callbackURL capabilities included: that
// quote is cut, and whatever secret-shaped text remains is masked.
type fasthttpLogger struct{ log zerolog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	msg := redactSecrets(fmt.Sprintf(format, args...))
	// One line per misbehaving connection (cut requests, MaxConnsPerIP): a client
	// decides how many, so they stay at debug. Accept-level trouble is the server's.
	lvl := zerolog.WarnLevel
	if strings.HasPrefix(format, "error when serving connection") || strings.Contains(format, "MaxConnsPerIP") {
		lvl = zerolog.DebugLevel
	}
	l.log.WithLevel(lvl).Str("component", "fasthttp").Msg(msg)
}

var secretShapes = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(bearer\s+)\S+`),
	regexp.MustCompile(`(?i)(access_token=)[^&\s"]+`),
	regexp.MustCompile(`(/notifications/)[^\s"?]+`),
}

// redactSecrets drops a quoted request ("…: buffer size=N, contents: …") and masks
// bearer tokens, access_token parameters and callbackURL tokens.
func redactSecrets(s string) string {
	if i := strings.Index(s, ": buffer size="); i >= 0 {
		s = s[:i] + " (request contents not logged)"
	}
	for _, re := range secretShapes {
		s = re.ReplaceAllString(s, "${1}…")
	}
	return s
}

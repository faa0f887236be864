package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "10s", "1m30s" in YAML and environment.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 10s or 5m", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalText lets YAML and the environment set a Duration.
func (d *Duration) UnmarshalText(b []byte) error { return d.set(string(b)) }

// MarshalText writes a Duration as YAML does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Size is a byte count written as 1048576, "512KiB", "1MiB" or "2MB".
type Size int64

// UnmarshalText lets YAML and the environment set a Size.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := parseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000}, {"B", 1}, {"", 1}}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q is not a size like 1048576, 512KiB or 1MiB", s)
}

// SigningKey decodes delivery.signing_secret as the Standard Webhooks libraries do:
// "whsec_<base64>" or bare "<base64>"; the key is the decoded bytes. Empty: no key.
func SigningKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("must be whsec_<base64> or <base64>")
	}
	return key, nil
}

// SigningKeys decodes the current signing secret and the previous ones still in
// use, current first; none when signing is off.
func SigningKeys(current string, previous []string) ([][]byte, error) {
	key, err := SigningKey(current)
	if err != nil {
		return nil, fmt.Errorf("delivery.signing_secret: %w", err)
	}
	if key == nil {
		if len(previous) > 0 {
			return nil, fmt.Errorf("delivery.previous_signing_secrets: needs delivery.signing_secret")
		}
		return nil, nil
	}
	keys := [][]byte{key}
	for i, p := range previous {
		k, err := SigningKey(p)
		if err != nil || k == nil {
			return nil, fmt.Errorf("delivery.previous_signing_secrets[%d]: must be whsec_<base64> or <base64>", i)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func nonEmpty(key, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s: must not be empty", key)
	}
	return nil
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", key, v, strings.Join(allowed, ", "))
}

func positive(key string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s: must be positive", key)
	}
	return nil
}

func atLeast(key string, v, min int) error {
	if v < min {
		return fmt.Errorf("%s: must be at least %d", key, min)
	}
	return nil
}

func checkHostPort(key, v string, emptyOK bool) error {
	if v == "" && emptyOK {
		return nil
	}
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("%s: %q is not host:port", key, v)
	}
	return nil
}

package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable that sets a key.
const EnvPrefix = "NOTIFYRELAY_"

// Load builds the configuration: defaults, then the YAML file (if path is not empty),
// then NOTIFYRELAY_* variables from environ, then flags (key → value, as from the
// command line). It validates the result. Errors name the offending key.
func Load(path string, environ []string, flags map[string]string) (Config, error) {
	cfg := Default()
	if path != "" {
		if err := loadFile(&cfg, path); err != nil {
			return cfg, err
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return cfg, err
	}
	for key, v := range flags {
		if err := setKey(&cfg, key, v); err != nil {
			return cfg, err
		}
	}
	return cfg, cfg.Validate()
}

func loadFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it sets nothing.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

func applyEnv(cfg *Config, environ []string) error {
	keys := map[string]string{}
	for _, k := range Keys() {
		keys[EnvPrefix+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = k
	}
	for _, kv := range environ {
		name, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		key, ok := keys[name]
		if !ok {
			return fmt.Errorf("environment %s: no such key", name)
		}
		if err := setKey(cfg, key, v); err != nil {
			return fmt.Errorf("environment %s: %w", name, err)
		}
	}
	return nil
}

// Keys lists every dotted key of Config, as in the YAML file.
func Keys() []string {
	var out []string
	walk(reflect.ValueOf(&Config{}).Elem(), "", func(key string, _ reflect.Value) { out = append(out, key) })
	return out
}

func walk(v reflect.Value, prefix string, fn func(string, reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key := prefix + t.Field(i).Tag.Get("yaml")
		f := v.Field(i)
		if f.Kind() == reflect.Struct && !f.Addr().Type().Implements(textUnmarshaler) {
			walk(f, key+".", fn)
			continue
		}
		fn(key, f)
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// setKey sets one dotted key from its string form. Lists (auth.tokens,
// channels.allowed_origins) are given as YAML, e.g. '[a, b]'.
func setKey(cfg *Config, key, v string) error {
	var target reflect.Value
	walk(reflect.ValueOf(cfg).Elem(), "", func(k string, f reflect.Value) {
		if k == key {
			target = f
		}
	})
	if !target.IsValid() {
		return fmt.Errorf("%s: no such key", key)
	}
	if err := setValue(target, v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func setValue(f reflect.Value, v string) error {
	if u, ok := f.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(v))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(v)
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		f.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		f.SetInt(int64(n))
	case reflect.Slice:
		return yaml.Unmarshal([]byte(v), f.Addr().Interface())
	default:
		return fmt.Errorf("cannot be set from text")
	}
	return nil
}

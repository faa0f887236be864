package config

import (
	"bytes"
	"encoding"
	"fmt"
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
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	if err := applyNode(cfg, doc.Content[0], ""); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// applyNode sets every key of a YAML mapping through setKey's dotted names, so an
// unknown key or a bad value is reported with its full key and line.
func applyNode(cfg *Config, n *yaml.Node, prefix string) error {
	if n.Kind != yaml.MappingNode {
		name := strings.TrimSuffix(prefix, ".")
		if name == "" {
			name = "the file"
		}
		return fmt.Errorf("line %d: %s must be a mapping of keys", n.Line, name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		f, ok := lookup(cfg, key)
		if !ok {
			return fmt.Errorf("line %d: %s: no such key", k.Line, key)
		}
		if isSection(f) {
			if err := applyNode(cfg, v, key+"."); err != nil {
				return err
			}
			continue
		}
		if err := setNode(cfg, f, key, v); err != nil {
			return fmt.Errorf("line %d: %w", k.Line, err)
		}
	}
	return nil
}

// setNode sets one leaf key from its YAML value.
func setNode(cfg *Config, f reflect.Value, key string, v *yaml.Node) error {
	switch {
	case v.Tag == "!!null":
		return nil // "key:" with no value keeps the default
	case f.Kind() == reflect.Slice:
		if err := decodeStrict(v, f.Addr().Interface()); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	case v.Kind != yaml.ScalarNode:
		return fmt.Errorf("%s: must be a single value", key)
	}
	return setKey(cfg, key, v.Value)
}

func isSection(f reflect.Value) bool {
	return f.Kind() == reflect.Struct && !f.Addr().Type().Implements(textUnmarshaler)
}

// decodeStrict decodes a list, refusing unknown fields in its items.
func decodeStrict(v *yaml.Node, out any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	return dec.Decode(out)
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
		if isSection(f) {
			walk(f, key+".", fn)
			continue
		}
		fn(key, f)
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// setKey sets one dotted key from its string form. Lists (auth.tokens,
// channels.allowed_origins, queue.jetstream.urls) are given as YAML, e.g. '[a, b]';
// lists of strings also as 'a,b'.
func setKey(cfg *Config, key, v string) error {
	target, ok := lookup(cfg, key)
	if !ok {
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
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		f.SetFloat(x)
	case reflect.Slice:
		return setList(f, v)
	default:
		return fmt.Errorf("cannot be set from text")
	}
	return nil
}

// setList sets a list from YAML ('[a, b]'); a list of strings may also be given as
// plain comma-separated text ('a,b'), the natural form of an environment variable.
func setList(f reflect.Value, v string) error {
	err := yaml.Unmarshal([]byte(v), f.Addr().Interface())
	if err == nil || f.Type().Elem().Kind() != reflect.String || strings.HasPrefix(strings.TrimSpace(v), "[") {
		return err
	}
	var items []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	f.Set(reflect.ValueOf(items).Convert(f.Type()))
	return nil
}

// lookup finds the field of a dotted key: a leaf, or a section (a nested struct).
func lookup(cfg *Config, key string) (reflect.Value, bool) {
	v := reflect.ValueOf(cfg).Elem()
	for _, name := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Tag.Get("yaml") == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	return v, true
}

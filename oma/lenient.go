package oma

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// MaxDepth is the deepest element nesting accepted in a request document.
const MaxDepth = 32

// Node is a parsed request document in a form shared by XML and JSON: the element's
// local name (prefix dropped), its text, and its children. XML attributes and JSON
// keys are both children, a JSON array is repeated children of one name, and JSON
// null is a node with no text and no children. Request parsers read documents as
// Nodes so that the lenient rules (docs/api.md §3) live in one place.
type Node struct {
	Name string
	Text string
	Kids []*Node
}

var (
	errDoctype = errors.New("DOCTYPE not allowed")
	errDepth   = errors.New("nesting too deep")
)

// ParseXML reads an XML document strictly, and on a syntax error once more with the
// lax decoder (the seed's examples close their root with the wrong tag). A DOCTYPE
// or nesting deeper than MaxDepth is refused before any retry.
func ParseXML(b []byte) (*Node, error) {
	n, err := parseXML(b, true)
	if err == nil || errors.Is(err, errDoctype) || errors.Is(err, errDepth) {
		return n, err
	}
	return parseXML(b, false)
}

func parseXML(b []byte, strict bool) (*Node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = strict
	var stack []*Node
	var root *Node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			if isDoctype(t) {
				return nil, errDoctype
			}
		case xml.StartElement:
			if len(stack) >= MaxDepth {
				return nil, errDepth
			}
			if root != nil && len(stack) == 0 {
				return nil, errors.New("more than one root element")
			}
			n := startNode(t)
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.Kids = append(top.Kids, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.Text = strings.TrimSpace(top.Text)
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 && !strict {
				return root, nil // the lax decoder repeats a mismatched end tag: stop at the root's end
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

func isDoctype(d xml.Directive) bool {
	s := strings.TrimSpace(string(d))
	return len(s) >= 7 && strings.EqualFold(s[:7], "DOCTYPE")
}

func startNode(t xml.StartElement) *Node {
	n := &Node{Name: t.Name.Local}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" || a.Name.Space != "" {
			continue // namespace declarations and xsi:type carry no field
		}
		n.Kids = append(n.Kids, &Node{Name: a.Name.Local, Text: a.Value})
	}
	return n
}

// ParseJSON reads a root-wrapped JSON document ({"root": {...}}). A body that is
// not valid JSON is retried once with curly quotes (U+201C, U+201D) made straight,
// as the seed's role example needs; bodies that were valid JSON are never touched.
func ParseJSON(b []byte) (*Node, error) {
	var v any
	err := decodeJSON(b, &v)
	if err != nil {
		fixed := strings.NewReplacer("\u201c", `"`, "\u201d", `"`).Replace(string(b))
		if fixed == string(b) || decodeJSON([]byte(fixed), &v) != nil {
			return nil, err
		}
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return nil, errors.New("not a root-wrapped object")
	}
	for k, val := range obj {
		return jsonNode(localName(k), val, 1)
	}
	return nil, errors.New("empty document")
}

func decodeJSON(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after the document")
	}
	return nil
}

// jsonNode converts a decoded value; arrays are flattened by the caller.
func jsonNode(name string, v any, depth int) (*Node, error) {
	if depth > MaxDepth {
		return nil, errDepth
	}
	n := &Node{Name: name}
	switch t := v.(type) {
	case map[string]any:
		for k, kv := range t {
			kids, err := jsonKids(k, kv, depth+1)
			if err != nil {
				return nil, err
			}
			n.Kids = append(n.Kids, kids...)
		}
	case []any:
		return nil, errors.New("array where an object or value was expected: " + name)
	case string:
		n.Text = t
	case json.Number:
		n.Text = t.String()
	case bool:
		n.Text = "false"
		if t {
			n.Text = "true"
		}
	}
	return n, nil
}

func jsonKids(key string, v any, depth int) ([]*Node, error) {
	arr, ok := v.([]any)
	if !ok {
		n, err := jsonNode(key, v, depth)
		return []*Node{n}, err
	}
	out := make([]*Node, 0, len(arr))
	for _, item := range arr {
		n, err := jsonNode(key, item, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func localName(k string) string {
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		return k[i+1:]
	}
	return k
}

// ParseDocument parses b as f and checks that its root is one of roots (compared
// case-insensitively, prefix ignored). Any failure is a 400 SVC0002 naming part.
func ParseDocument(f Format, b []byte, part string, roots ...string) (*Node, *RequestError) {
	var n *Node
	var err error
	if f == XML {
		n, err = ParseXML(b)
	} else {
		n, err = ParseJSON(b)
	}
	if err != nil {
		return nil, InvalidInput(part + " (" + err.Error() + ")")
	}
	for _, r := range roots {
		if strings.EqualFold(n.Name, r) {
			return n, nil
		}
	}
	return nil, InvalidInput(part + " (unexpected root element " + n.Name + ")")
}

// Child returns the first child whose name matches one of names case-insensitively,
// or nil. A nil receiver has no children.
func (n *Node) Child(names ...string) *Node {
	if n == nil {
		return nil
	}
	for _, k := range n.Kids {
		for _, name := range names {
			if strings.EqualFold(k.Name, name) {
				return k
			}
		}
	}
	return nil
}

// All returns every child named name (case-insensitive).
func (n *Node) All(name string) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	for _, k := range n.Kids {
		if strings.EqualFold(k.Name, name) {
			out = append(out, k)
		}
	}
	return out
}

// Value is the trimmed text of the child named by names, "" when absent.
func (n *Node) Value(names ...string) string {
	if c := n.Child(names...); c != nil {
		return strings.TrimSpace(c.Text)
	}
	return ""
}

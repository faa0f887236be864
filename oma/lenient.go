package oma

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
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
	// errShape marks a stream that is not one XML document: a second root, text
	// outside the root, an XML declaration anywhere but at the start.
	errShape = errors.New("not a single XML document")
)

// ParseXML reads an XML document leniently, in one pass of the lax decoder: on a
// document the strict decoder accepts it reads the same nodes, and it also takes
// the seed's examples, which close their root with the wrong tag. It refuses what
// the strict path refuses on principle: a DOCTYPE anywhere, nesting deeper than
// MaxDepth, a second root, text after the root, a misplaced XML declaration.
func ParseXML(b []byte) (*Node, error) {
	return parseXML(b, false)
}

// xmlFrame is an open element and its text so far: text is appended to, never
// rebuilt, so a text split by many comments or PIs costs linear time.
type xmlFrame struct {
	n    *Node
	text []byte
}

type xmlReader struct {
	b     []byte
	d     *xml.Decoder
	stack []xmlFrame
	root  *Node
}

func parseXML(b []byte, strict bool) (*Node, error) {
	r := &xmlReader{b: b, d: xml.NewDecoder(bytes.NewReader(b))}
	r.d.Strict = strict
	for {
		at := r.d.InputOffset()
		tok, err := r.d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r.misclosed(err)
		}
		if err := checkToken(tok, b[:at], len(r.stack), r.root != nil); err != nil {
			return nil, err
		}
		r.take(tok)
	}
	if r.root == nil {
		return nil, errors.New("no root element")
	}
	return r.root, nil
}

func (r *xmlReader) take(tok xml.Token) {
	switch t := tok.(type) {
	case xml.StartElement:
		n := startNode(t)
		if len(r.stack) > 0 {
			top := r.stack[len(r.stack)-1].n
			top.Kids = append(top.Kids, n)
		} else {
			r.root = n
		}
		r.stack = append(r.stack, xmlFrame{n: n})
	case xml.EndElement:
		r.pop()
	case xml.CharData:
		if len(r.stack) > 0 {
			top := &r.stack[len(r.stack)-1]
			top.text = append(top.text, t...)
		}
	}
}

func (r *xmlReader) pop() {
	top := r.stack[len(r.stack)-1]
	top.n.Text = strings.TrimSpace(string(top.text))
	r.stack = r.stack[:len(r.stack)-1]
}

// misclosed handles a decoding error. The lax decoder closes a root at a
// mismatched end tag and then refuses that tag: the document ends there, and what
// follows must still be nothing but space, comments and PIs. Any other error stands.
func (r *xmlReader) misclosed(err error) (*Node, error) {
	if len(r.stack) > 0 || r.root == nil || r.d.Strict || !strayEnd(err) {
		return nil, err
	}
	return r.root, checkTail(r.b[r.d.InputOffset():])
}

// checkToken refuses, in either pass, what makes b not one safe document: a
// DOCTYPE anywhere, nesting deeper than MaxDepth, a second root, text outside the
// root, an XML declaration after anything but a BOM and white space (before is the
// input read ahead of tok).
func checkToken(tok xml.Token, before []byte, depth int, rooted bool) error {
	switch t := tok.(type) {
	case xml.Directive:
		if isDoctype(t) {
			return errDoctype
		}
	case xml.StartElement:
		if depth >= MaxDepth {
			return errDepth
		}
		if depth == 0 && rooted {
			return fmt.Errorf("%w: more than one root element", errShape)
		}
	case xml.CharData:
		if depth == 0 && len(bytes.Trim(t, xmlSpace)) > 0 {
			return fmt.Errorf("%w: text outside the root element", errShape)
		}
	case xml.ProcInst:
		if strings.EqualFold(t.Target, "xml") && len(bytes.Trim(before, xmlSpace)) > 0 {
			return fmt.Errorf("%w: XML declaration not at the start", errShape)
		}
	}
	return nil
}

func strayEnd(err error) bool {
	var se *xml.SyntaxError
	return errors.As(err, &se) && strings.HasPrefix(se.Msg, "unexpected end element")
}

// checkTail checks what follows a root the lax decoder closed: stray end tags are
// skipped, anything checkToken refuses after a root is refused.
func checkTail(rest []byte) error {
	for {
		d := xml.NewDecoder(bytes.NewReader(rest))
		for {
			tok, err := d.Token()
			if err == io.EOF {
				return nil
			}
			if err != nil && strayEnd(err) {
				break
			}
			if err != nil {
				return err
			}
			if err := checkToken(tok, []byte("<root/>"), 0, true); err != nil {
				return err
			}
		}
		rest = rest[d.InputOffset():]
	}
}

// xmlSpace is what may surround the root: XML white space, and a BOM at the start.
const xmlSpace = " \t\r\n\ufeff"

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

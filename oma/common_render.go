package oma

import "strconv"

// elem is an output document described once and rendered in either format: XML with
// a prefixed root and unqualified children in the order given, or root-wrapped JSON
// with arrays for lists. The hot notifications (N1, N2) have hand-written encoders
// instead; everything else goes through here.
type elem struct {
	name  string
	text  string
	raw   bool    // text is a JSON number or boolean, written unquoted
	attrs []Link  // XML attributes (rel/href of a link); JSON keys
	kids  []elem  // child elements, in schema order
	list  *[]elem // non-nil: a repeated element; XML repeats name, JSON writes an array
}

func text(name, v string) elem { return elem{name: name, text: v} }
func number(name string, v int) elem {
	return elem{name: name, text: strconv.Itoa(v), raw: true}
}
func obj(name string, kids ...elem) elem { return elem{name: name, kids: kids} }
func list(name string, items []elem) elem {
	if items == nil {
		items = []elem{}
	}
	return elem{name: name, list: &items}
}

// opt keeps only the elements whose text is non-empty or that have children.
func opt(es ...elem) []elem {
	out := es[:0]
	for _, e := range es {
		if e.text != "" || e.kids != nil || e.list != nil || e.attrs != nil {
			out = append(out, e)
		}
	}
	return out
}

// render writes root in f; prefix and ns name the XML root's namespace.
func render(f Format, prefix, ns string, root elem) []byte {
	if f == XML {
		b := append([]byte(XMLHeader), '<')
		b = append(b, prefix+":"+root.name+` xmlns:`+prefix+`="`+ns+`"`...)
		return root.appendXMLBody(b, prefix+":"+root.name)
	}
	b := append([]byte(nil), '{')
	b = appendJSONKey(b, root.name, true)
	b = root.appendJSONValue(b)
	return append(b, '}')
}

func (e elem) appendXML(b []byte) []byte {
	if e.list != nil {
		for _, it := range *e.list {
			it.name = e.name
			b = it.appendXML(b)
		}
		return b
	}
	b = append(b, '<')
	b = append(b, e.name...)
	return e.appendXMLBody(b, e.name)
}

// appendXMLBody writes attributes, content and the end tag of an opened element.
func (e elem) appendXMLBody(b []byte, name string) []byte {
	for _, a := range e.attrs {
		b = append(b, ` rel="`...)
		b = appendXMLText(b, a.Rel)
		b = append(b, `" href="`...)
		b = appendXMLText(b, a.Href)
		b = append(b, '"')
	}
	if e.text == "" && len(e.kids) == 0 {
		return append(b, "/>"...)
	}
	b = append(b, '>')
	b = appendXMLText(b, e.text)
	for _, k := range e.kids {
		b = k.appendXML(b)
	}
	b = append(b, "</"...)
	b = append(b, name...)
	return append(b, '>')
}

func (e elem) appendJSONValue(b []byte) []byte {
	switch {
	case e.list != nil:
		b = append(b, '[')
		for i, it := range *e.list {
			if i > 0 {
				b = append(b, ',')
			}
			b = it.appendJSONValue(b)
		}
		return append(b, ']')
	case e.attrs != nil:
		b = append(b, `{"rel":`...)
		b = appendJSONString(b, e.attrs[0].Rel)
		b = append(b, `,"href":`...)
		b = appendJSONString(b, e.attrs[0].Href)
		return append(b, '}')
	case e.raw:
		return append(b, e.text...)
	case e.kids != nil:
		return e.appendJSONObject(b)
	}
	return appendJSONString(b, e.text)
}

// appendJSONObject writes the children; consecutive links become one array.
func (e elem) appendJSONObject(b []byte) []byte {
	b = append(b, '{')
	for i := 0; i < len(e.kids); i++ {
		k := e.kids[i]
		b = appendJSONKey(b, k.name, i == 0)
		if k.name == "link" && k.attrs != nil {
			j := i
			for j < len(e.kids) && e.kids[j].name == "link" {
				j++
			}
			b = list("link", e.kids[i:j]).appendJSONValue(b)
			i = j - 1
			continue
		}
		b = k.appendJSONValue(b)
	}
	return append(b, '}')
}

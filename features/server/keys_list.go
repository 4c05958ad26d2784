package server

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/meshfast/meshfast/features/mesh"
)

// nodeValue is a key whose file value is a YAML node other than a scalar:
// the exposure lists. Its Set takes the same node written as YAML text (an
// environment variable holds the list in YAML's flow form,
// [{pattern: "^chat:", history: 50}]); its String writes that form.
type nodeValue interface {
	flag.Value
	// decode replaces the value with n's. Its errors are *keyError with
	// the line in n and the key relative to the list ("[1].history").
	decode(n *yaml.Node) error
	encode() *yaml.Node
}

// keyError is a bad key or value at a line of a YAML text.
type keyError struct {
	line int
	key  string
	err  error
}

func (e *keyError) Error() string { return fmt.Sprintf("line %d: %s: %v", e.line, e.key, e.err) }
func (e *keyError) Unwrap() error { return e.err }

// list is a list of exposures of entry type T, each a mapping with a name
// or a pattern and T's own fields.
type list[T any] struct {
	p      *[]T
	fresh  func() T // an entry before its keys are read; nil for T's zero value
	exp    func(*T) *Exposure
	fields []field[T] // after name and pattern, in the order they are written
}

type field[T any] struct {
	name  string
	value func(*T) flag.Value
}

func channelList(p *[]ChannelExposure) *list[ChannelExposure] {
	return &list[ChannelExposure]{p: p,
		exp: func(c *ChannelExposure) *Exposure { return &c.Exposure },
		fields: []field[ChannelExposure]{
			{"history", func(c *ChannelExposure) flag.Value { return (*count)(&c.History) }},
			{"durable", func(c *ChannelExposure) flag.Value { return (*boolean)(&c.Durable) }},
		},
	}
}

func recordList(p *[]Exposure) *list[Exposure] {
	return &list[Exposure]{p: p, exp: func(x *Exposure) *Exposure { return x }}
}

func presenceList(p *[]PresenceExposure) *list[PresenceExposure] {
	return &list[PresenceExposure]{p: p,
		fresh:  func() PresenceExposure { return PresenceExposure{TTL: mesh.DefaultPresenceTTL} },
		exp:    func(x *PresenceExposure) *Exposure { return &x.Exposure },
		fields: []field[PresenceExposure]{{"ttl", func(x *PresenceExposure) flag.Value { return (*positiveDuration)(&x.TTL) }}},
	}
}

func (l *list[T]) names() []string {
	out := []string{"name", "pattern"}
	for _, f := range l.fields {
		out = append(out, f.name)
	}
	return out
}

// entryKey returns the value of entry e's key name, nil if T has none.
func (l *list[T]) entryKey(e *T, name string) flag.Value {
	switch name {
	case "name":
		return (*nonEmpty)(&l.exp(e).Name)
	case "pattern":
		return pattern{&l.exp(e).Pattern}
	}
	for _, f := range l.fields {
		if f.name == name {
			return f.value(e)
		}
	}
	return nil
}

func (l *list[T]) decode(n *yaml.Node) error {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return &keyError{n.Line, "", errors.New("not a list (an entry per line, each starting with -, or [] for none)")}
	}
	out := make([]T, 0, len(n.Content))
	for i, item := range n.Content {
		item = resolve(item)
		at := fmt.Sprintf("[%d]", i)
		if item.Kind != yaml.MappingNode {
			return &keyError{item.Line, at, fmt.Errorf("not a mapping of %s", strings.Join(l.names(), ", "))}
		}
		var e T
		if l.fresh != nil {
			e = l.fresh()
		}
		err := eachKey(item, at+".", func(k, v *yaml.Node) error {
			val := l.entryKey(&e, k.Value)
			if val == nil {
				return &keyError{k.Line, at, fmt.Errorf("unknown key %q (an entry has %s)", k.Value, strings.Join(l.names(), ", "))}
			}
			if err := setScalar(val, v); err != nil {
				return &keyError{v.Line, at + "." + k.Value, err}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := l.exp(&e).validate(); err != nil {
			return &keyError{item.Line, at, err}
		}
		out = append(out, e)
	}
	*l.p = out
	return nil
}

func (l *list[T]) encode() *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{}}
	for i := range *l.p {
		e := &(*l.p)[i]
		m := &yaml.Node{Kind: yaml.MappingNode}
		if x := l.exp(e); x.Pattern != nil {
			m.Content = append(m.Content, scalarNode("pattern"), scalarNode(x.Pattern.String()))
		} else {
			m.Content = append(m.Content, scalarNode("name"), scalarNode(x.Name))
		}
		for _, f := range l.fields {
			m.Content = append(m.Content, scalarNode(f.name), scalarNode(f.value(e).String()))
		}
		seq.Content = append(seq.Content, m)
	}
	return seq
}

// String is the list in YAML's flow form, as an environment variable holds it.
func (l *list[T]) String() string {
	if l == nil || l.p == nil {
		return "[]"
	}
	n := l.encode()
	n.Style = yaml.FlowStyle
	b, err := yaml.Marshal(n)
	if err != nil { // a tree of plain scalars always encodes
		return fmt.Sprintf("<%v>", err)
	}
	return strings.TrimSpace(string(b))
}

// Set replaces the list with the one YAML text s holds.
func (l *list[T]) Set(s string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		*l.p = nil
		return nil
	}
	return l.decode(doc.Content[0])
}

// pattern is a regular expression in Go's RE2 syntax.
type pattern struct{ re **regexp.Regexp }

func (v pattern) String() string {
	if v.re == nil || *v.re == nil {
		return ""
	}
	return (*v.re).String()
}

func (v pattern) Set(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return err
	}
	*v.re = re
	return nil
}

// resolve follows an alias to its anchored node. The loader never follows
// more than the schema's depth, so aliases cannot make it do more work
// than the nodes they point to.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// eachKey calls fn with each key of mapping m and its value, refusing keys
// that are not plain names and keys given twice (with prefix before the
// key in the error).
func eachKey(m *yaml.Node, prefix string, fn func(k, v *yaml.Node) error) error {
	seen := make(map[string]int, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			return &keyError{k.Line, strings.TrimSuffix(prefix, "."), errors.New("a key must be a plain name")}
		}
		if first, dup := seen[k.Value]; dup {
			return &keyError{k.Line, prefix + k.Value, fmt.Errorf("given twice (first on line %d)", first)}
		}
		seen[k.Value] = k.Line
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// setScalar sets v from a scalar node's text, whatever YAML would have
// typed it as: "10", 10 and '10' are all 10 to a count.
func setScalar(v flag.Value, n *yaml.Node) error {
	switch {
	case n.Kind != yaml.ScalarNode:
		return errors.New("not a single value")
	case n.ShortTag() == "!!null":
		return errors.New("no value")
	}
	if err := v.Set(n.Value); err != nil {
		return fmt.Errorf("%q: %w", n.Value, err)
	}
	return nil
}

// scalarNode is s as a scalar the encoder writes plain where YAML allows.
// A value that would read back as null ("", "~", "null") is quoted, as the
// loader refuses null.
func scalarNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	if n.ShortTag() == "!!null" {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// stringList is a list of strings: a YAML sequence of scalars, each not
// empty; an environment variable holds it in YAML's flow form, [a, b].
type stringList struct{ p *[]string }

func (l stringList) decode(n *yaml.Node) error {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		return &keyError{n.Line, "", errors.New("not a list (an entry per line, each starting with -, or [] for none)")}
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		var v nonEmpty
		if err := setScalar(&v, resolve(item)); err != nil {
			return &keyError{item.Line, fmt.Sprintf("[%d]", i), err}
		}
		out = append(out, string(v))
	}
	*l.p = out
	return nil
}

func (l stringList) encode() *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{}}
	for _, s := range *l.p {
		seq.Content = append(seq.Content, scalarNode(s))
	}
	return seq
}

func (l stringList) String() string {
	if l.p == nil {
		return "[]"
	}
	n := l.encode()
	n.Style = yaml.FlowStyle
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return strings.TrimSpace(string(b))
}

func (l stringList) Set(s string) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		*l.p = nil
		return nil
	}
	return l.decode(doc.Content[0])
}

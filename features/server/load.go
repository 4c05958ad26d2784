package server

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A Loader builds Settings from the binary's defaults, a configuration
// file, the environment and flags, applied in that order so that each
// overrides the one before (flag > env > file > default); it remembers
// where each key was last set so that an error can say where to look.
//
// The file is YAML: go.yaml.in/yaml/v3 is already in the module graph
// (gnet's logger pulls it in), so the format costs no dependency, and its
// node tree carries the line of every key and value, which lets the
// loader name the line of a bad value or an unknown key, not only of a
// syntax error. The loader walks that tree itself against the key table
// (keys.go) instead of decoding into tagged structs: one table then gives
// the file's keys, the environment's variables, the flags, -print-config
// and the documentation.
//
// A Loader is used by one goroutine.
type Loader struct {
	// Settings is the result so far. Flags registered with Flags write it
	// when the flag set is parsed.
	Settings Settings
	// from is where each key was set last, by path: "meshfast.yaml:12:
	// addr", `MESHFAST_ADDR="x"`, `-addr "x"`.
	from map[string]string
}

// NewLoader returns a Loader holding DefaultSettings.
func NewLoader() *Loader {
	return &Loader{Settings: DefaultSettings(), from: make(map[string]string)}
}

// lookupKey returns the key at path, nil if there is none.
func lookupKey(path string) *key {
	for i := range table {
		if table[i].path == path {
			return &table[i]
		}
	}
	return nil
}

// section returns the names of the keys and sections directly under
// prefix ("" for the top, "log." for the log section), in table order;
// nil if prefix is no section.
func section(prefix string) []string {
	var out []string
	for _, k := range table {
		rest, ok := strings.CutPrefix(k.path, prefix)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// LoadFile applies the configuration file name holds data of. An empty
// file (or one of comments) changes nothing. A syntax error, an unknown
// key, a key given twice or a bad value is returned with the file's name
// and the line; the keys before it are applied, the rest not.
func (l *Loader) LoadFile(name string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		line := more.Line
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return fmt.Errorf("%s:%d: a second YAML document; the configuration is one", name, line)
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: not a mapping of keys to values (key: value, one per line)", name, root.Line)
	}
	return l.walk(name, root, "")
}

// walk applies mapping m, whose keys are under prefix.
func (l *Loader) walk(file string, m *yaml.Node, prefix string) error {
	err := eachKey(m, prefix, func(kn, vn *yaml.Node) error {
		if sec, rest, dotted := strings.Cut(kn.Value, "."); dotted {
			// One way to write a key, so that "given twice" catches a
			// key written twice.
			return fmt.Errorf("%s:%d: key %q has a dot: write %s: indented under %s:", file, kn.Line, kn.Value, rest, sec)
		}
		path := prefix + kn.Value
		if k := lookupKey(path); k != nil {
			at := fmt.Sprintf("%s:%d", file, kn.Line)
			v := k.value(&l.Settings)
			if nv, ok := v.(nodeValue); ok {
				if err := nv.decode(vn); err != nil {
					var ke *keyError
					if errors.As(err, &ke) {
						return fmt.Errorf("%s:%d: %s%w", file, ke.line, keyColon(path+ke.key), ke.err)
					}
					return fmt.Errorf("%s: %s: %w", at, path, err)
				}
			} else if err := setScalar(v, vn); err != nil {
				return fmt.Errorf("%s:%d: %s: %w", file, vn.Line, path, err)
			}
			l.from[path] = at + ": " + path
			return nil
		}
		if sub := section(path + "."); sub != nil {
			if vn.Kind != yaml.MappingNode {
				return fmt.Errorf("%s:%d: %s is a section: write its keys (%s) indented under it", file, vn.Line, path, strings.Join(sub, ", "))
			}
			return l.walk(file, vn, path+".")
		}
		return fmt.Errorf("%s:%d: unknown key %q%s", file, kn.Line, path, suggest(prefix, kn.Value))
	})
	if ke, ok := err.(*keyError); ok { // eachKey's own: a key given twice, or not a name
		return fmt.Errorf("%s:%d: %s%w", file, ke.line, keyColon(ke.key), ke.err)
	}
	return err
}

// keyColon is "key: ", or nothing for no key.
func keyColon(key string) string {
	if key == "" {
		return ""
	}
	return key + ": "
}

// suggest names the key under prefix closest to the unknown name, or lists
// them all when none is close.
func suggest(prefix, name string) string {
	known := section(prefix)
	best, bestDist := "", 3 // more than two edits away is no typo
	for _, k := range known {
		if d := editDistance(name, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", prefix+best)
	}
	where := "the top level"
	if prefix != "" {
		where = strings.TrimSuffix(prefix, ".")
	}
	return fmt.Sprintf(" (%s has: %s)", where, strings.Join(known, ", "))
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// LoadEnv applies every key's environment variable (EnvName) that lookup
// finds set and not empty: an empty variable counts as unset, as a
// container's blank entries are. A list's variable holds the list in
// YAML's flow form. A bad value is returned naming the variable.
func (l *Loader) LoadEnv(lookup func(string) (string, bool)) error {
	for _, k := range table {
		name := EnvName(k.path)
		s, ok := lookup(name)
		if !ok || s == "" {
			continue
		}
		if err := k.value(&l.Settings).Set(s); err != nil {
			var ke *keyError
			if errors.As(err, &ke) {
				return fmt.Errorf("%s=%q: line %d: %s%w", name, s, ke.line, keyColon(k.path+ke.key), ke.err)
			}
			return fmt.Errorf("%s=%q: %w", name, s, err)
		}
		l.from[k.path] = fmt.Sprintf("%s=%q", name, s)
	}
	return nil
}

// Flags registers a flag (FlagName) for every key that has one on fs,
// writing l.Settings when fs is parsed. Each usage names the key's
// environment variable. Parse fs with ParseFlags, which records which keys
// the flags set.
func (l *Loader) Flags(fs *flag.FlagSet) {
	for _, k := range table {
		if k.flag {
			fs.Var(k.value(&l.Settings), k.flagName(), k.usage+" ($"+EnvName(k.path)+")")
		}
	}
}

// ParseFlags parses args with fs, on which Flags registered l's flags. A
// bad value is reported as package flag does, naming the flag.
func (l *Loader) ParseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	fs.Visit(func(f *flag.Flag) {
		for _, k := range table {
			if k.flag && k.flagName() == f.Name {
				l.from[k.path] = fmt.Sprintf("-%s %q", f.Name, f.Value.String())
			}
		}
	})
	return err
}

// Validate is Settings.Validate, with the error prefixed by where the
// offending key was set. Validate's rules live with the options they guard
// (engine.Options.Validate, Config.Validate), which know no keys, so the
// key is found by trying each key the user set alone on the defaults: the
// first that fails names the place. An error only a combination of keys
// causes is returned as it is.
func (l *Loader) Validate() error {
	err := l.Settings.Validate()
	if err == nil {
		return nil
	}
	for _, k := range table {
		from, ok := l.from[k.path]
		if !ok {
			continue
		}
		probe := DefaultSettings()
		if k.value(&probe).Set(k.value(&l.Settings).String()) != nil {
			continue
		}
		if perr := probe.Validate(); perr != nil {
			return fmt.Errorf("%s: %w", from, perr)
		}
	}
	return err
}

// Marshal writes s as a configuration file, every key in table order:
// what -print-config prints. Loading it gives s back.
func (s Settings) Marshal() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range table {
		parent, path := root, k.path
		for {
			sec, rest, ok := strings.Cut(path, ".")
			if !ok {
				break
			}
			parent, path = child(parent, sec), rest
		}
		v := k.value(&s)
		var n *yaml.Node
		if nv, ok := v.(nodeValue); ok {
			n = nv.encode()
		} else {
			n = scalarNode(v.String())
		}
		parent.Content = append(parent.Content, scalarNode(path), n)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// child returns the mapping under key name in m, adding it if absent.
func child(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	c := &yaml.Node{Kind: yaml.MappingNode}
	m.Content = append(m.Content, scalarNode(name), c)
	return c
}

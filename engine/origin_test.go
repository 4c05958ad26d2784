package engine

import (
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	for _, good := range []string{"https://app.example.com", "http://localhost:3000", "https://*.example.com",
		"http://[::1]:8080", "null", "chrome-extension://abcdef", "app://x"} {
		if _, err := parseOrigin(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for bad, want := range map[string]string{
		"app.example.com":          "not an origin",
		"https://app.example.com/": `browsers send "https://app.example.com"`,
		"https://x.com/path":       "no path",
		"https://*example.com":     "a pattern is",
		"https://a.*.example.com":  "a pattern is",
		"*":                        "not an origin",
		"https://":                 "not an origin",
		"https://x.com:port":       "bad port",
		"1http://x.com":            "bad scheme",
	} {
		if _, err := parseOrigin(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
}

// FuzzOrigins: parseOrigin and Origins.Allows never panic; an exact entry
// allows exactly itself, in any ASCII case; a pattern never allows an
// origin with a path, query, user or space after its scheme.
func FuzzOrigins(f *testing.F) {
	for _, s := range [][2]string{
		{"https://app.example.com", "https://app.example.com"},
		{"https://*.example.com", "https://a.b.example.com"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"null", "null"},
		{"https://*.example.com:8443", "https://x.example.com:8443/"},
		{"https://*.example.com", "https://evil.com/.example.com"},
		{"app://x", "APP://X"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, entry, origin string) {
		r, err := parseOrigin(entry)
		if err != nil {
			return
		}
		o := Origins{r}
		ok := o.Allows([]byte(origin))
		if r.exact != nil {
			if ok != strings.EqualFold(origin, entry) {
				t.Fatalf("%q allows %q: %v", entry, origin, ok)
			}
			if !o.Allows([]byte(strings.ToUpper(entry))) {
				t.Fatalf("%q does not allow itself in upper case", entry)
			}
			return
		}
		if ok && strings.ContainsAny(origin[len(r.scheme):], "/?#@ ") {
			t.Fatalf("pattern %q allows %q", entry, origin)
		}
	})
}

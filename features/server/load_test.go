package server

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/engine"
	"github.com/meshfast/meshfast/features/mesh"
)

// env is a fake environment for LoadEnv.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const goodFile = `# a comment
addr: "127.0.0.1:9123"
path: /chat
loops: 3
reuseport: false
max_connections: 500
max_message_size: 64KiB
max_pending_bytes: 1048576
max_header_bytes: 4KiB
handshake_timeout: 3s
idle_timeout: 2m
ping_interval: off
max_missed_pongs: 0
latency_interval: 0
max_queued_commands: 8
max_queued_bytes: 64KiB
max_inflight_commands: 1000
shutdown_timeout: 4s
bench: true
log:
  format: json
  level: warn
expose:
  channels:
    - pattern: ^chat:[a-z]+$
      history: 50
    - name: announcements
  records:
    - name: profile:1
  writable_records:
    - pattern: '^topic:' # quoted: a colon at the end would start a mapping
    - name: "null"       # a string, not YAML's null
    - name: "~"
  presence:
    - pattern: "^chat:"
      ttl: 45s
    - name: lobby
`

func TestLoadFileGood(t *testing.T) {
	l := NewLoader()
	if err := l.LoadFile("good.yaml", []byte(goodFile)); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	s := l.Settings
	e, m := s.Node.Engine, s.Node.Mesh
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"addr", e.Addr, "127.0.0.1:9123"},
		{"path", m.Path, "/chat"},
		{"loops", e.Loops, 3},
		{"reuseport", e.ReusePort, false},
		{"max_connections", e.MaxConnections, 500},
		{"max_message_size", e.MaxMessageSize, 64 << 10},
		{"max_pending_bytes", e.MaxPendingBytes, 1 << 20},
		{"max_header_bytes", e.MaxHeaderBytes, 4 << 10},
		{"handshake_timeout", e.HandshakeTimeout, 3 * time.Second},
		{"idle_timeout", e.IdleTimeout, 2 * time.Minute},
		{"ping_interval", m.PingInterval, time.Duration(-1)},
		{"max_missed_pongs 0 is Mesh's negative", m.MaxMissedPongs, -1},
		{"latency_interval 0 is off", m.LatencyInterval, time.Duration(-1)},
		{"max_queued_commands", m.MaxQueuedCommands, 8},
		{"max_queued_bytes", m.MaxQueuedBytes, 64 << 10},
		{"max_inflight_commands", m.MaxInFlight, 1000},
		{"shutdown_timeout", s.ShutdownTimeout, 4 * time.Second},
		{"bench", s.Node.Bench, true},
		{"log.format", s.Log.Format, LogJSON},
		{"log.level", s.Log.Level, slog.LevelWarn},
		{"channels", len(s.Node.Expose.Channels), 2},
		{"channel 0 pattern", s.Node.Expose.Channels[0].Pattern.String(), "^chat:[a-z]+$"},
		{"channel 0 history", s.Node.Expose.Channels[0].History, 50},
		{"channel 1 name", s.Node.Expose.Channels[1].Name, "announcements"},
		{"channel 1 history", s.Node.Expose.Channels[1].History, 0},
		{"record", s.Node.Expose.Records[0].Name, "profile:1"},
		{"writable", s.Node.Expose.WritableRecords[0].Pattern.String(), "^topic:"},
		{"presence ttl", s.Node.Expose.Presence[0].TTL, 45 * time.Second},
		{"presence default ttl", s.Node.Expose.Presence[1].TTL, mesh.DefaultPresenceTTL},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestLoadFileErrors checks that every refusal names the file, the line
// and the key, and says what is wrong.
func TestLoadFileErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"loops: 2\nmax_connections: lots\n", `c.yaml:2: max_connections: "lots": not a whole number`},
		{"max_message_size: -5\n", `c.yaml:1: max_message_size: "-5": negative`},
		{"max_message_size: 3TiB\n", `c.yaml:1: max_message_size: "3TiB": not a size`},
		{"max_message_size: 9999999999GiB\n", `c.yaml:1: max_message_size: "9999999999GiB": too large`},
		{"handshake_timeout: 0s\n", `c.yaml:1: handshake_timeout: "0s": must be more than 0`},
		{"idle_timeout: soon\n", `c.yaml:1: idle_timeout: "soon": not a duration`},
		{"reuseport: yes\n", `c.yaml:1: reuseport: "yes": not a boolean`},
		{"addr: \"\"\n", `c.yaml:1: addr: "": empty`},
		{"addr:\n", `c.yaml:1: addr: no value`},
		{"addr: [a, b]\n", `c.yaml:1: addr: not a single value`},
		{"max_inflight_commands: 0\n", `c.yaml:1: max_inflight_commands: "0": must be 1 or more`},
		{"\n\nmax_conections: 5\n", `c.yaml:3: unknown key "max_conections" (did you mean "max_connections"?)`},
		{"colour: red\n", `c.yaml:1: unknown key "colour" (the top level has: addr, path,`},
		{"log:\n  format: json\n  colour: red\n", `c.yaml:3: unknown key "log.colour" (log has: format, level)`},
		{"log:\n  formt: json\n", `c.yaml:2: unknown key "log.formt" (did you mean "log.format"?)`},
		{"log: json\n", `c.yaml:1: log is a section: write its keys (format, level) indented under it`},
		{"log:\n  format: xml\n", `c.yaml:2: log.format: "xml": "xml" is neither "text" nor "json"`},
		{"log:\n  level: loud\n", `c.yaml:2: log.level: "loud": "loud" is not debug, info, warn or error`},
		{"loops: 1\nloops: 2\n", `c.yaml:2: loops: given twice (first on line 1)`},
		{"addr: :1\n---\naddr: :2\n", `c.yaml:2: a second YAML document`},
		{"- a\n- b\n", `c.yaml:1: not a mapping of keys`},
		{"addr: [\n", `c.yaml: yaml: line`},
		{"expose:\n  channels: chat\n", `c.yaml:2: expose.channels: not a list`},
		{"expose:\n  channels:\n    - chat\n", `c.yaml:3: expose.channels[0]: not a mapping of name, pattern, history`},
		{"expose:\n  channels:\n    - name: a\n      history: -1\n", `c.yaml:4: expose.channels[0].history: "-1": negative`},
		{"expose:\n  channels:\n    - name: a\n    - name: b\n      histroy: 3\n", `c.yaml:5: expose.channels[1]: unknown key "histroy" (an entry has name, pattern, history, durable)`},
		{"expose:\n  channels:\n    - name: a\n      pattern: ^a\n", `c.yaml:3: expose.channels[0]: needs a name or a pattern, and not both`},
		{"expose:\n  channels:\n    - history: 3\n", `c.yaml:3: expose.channels[0]: needs a name or a pattern`},
		{"expose:\n  records:\n    - pattern: \"(\"\n", `c.yaml:3: expose.records[0].pattern: "(": error parsing regexp`},
		{"expose:\n  records:\n    - name: a\n      history: 3\n", `c.yaml:4: expose.records[0]: unknown key "history" (an entry has name, pattern)`},
		{"expose:\n  presence:\n    - name: a\n      ttl: 0s\n", `c.yaml:4: expose.presence[0].ttl: "0s": must be more than 0`},
		{"expose:\n  presence:\n    - name: a\n      name: b\n", `c.yaml:4: expose.presence[0].name: given twice (first on line 3)`},
		{"expose:\n  roomz: []\n", `c.yaml:2: unknown key "expose.roomz" (did you mean "expose.rooms"?)`},
		{"log.level: warn\n", `c.yaml:1: key "log.level" has a dot: write level: indented under log:`},
		// Validate's refusals, found on the key that causes them.
		{"addr: :1\nloops: 100\n", `c.yaml:2: loops: server: invalid configuration: engine: invalid options: Loops 100: 1 to 64`},
		{"path: chat\n", `c.yaml:1: path: server: invalid configuration: mesh: invalid options: Path "chat" does not start with "/"`},
		{"max_pending_bytes: 2GiB\n", `c.yaml:1: max_pending_bytes: server: invalid configuration`},
	} {
		l := NewLoader()
		err := l.LoadFile("c.yaml", []byte(tc.file))
		if err == nil {
			err = l.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v\nwant %s", tc.file, err, tc.want)
		}
	}
}

func TestLoadFileEmpty(t *testing.T) {
	for _, f := range []string{"", "# nothing\n", "---\n", "~\n"} {
		l := NewLoader()
		if err := l.LoadFile("e.yaml", []byte(f)); err != nil {
			t.Errorf("%q: %v", f, err)
		}
		if !equalSettings(l.Settings, DefaultSettings()) {
			t.Errorf("%q changed the settings", f)
		}
	}
}

func TestLoadEnv(t *testing.T) {
	l := NewLoader()
	err := l.LoadEnv(env(
		"MESHFAST_MAX_CONNECTIONS", "7",
		"MESHFAST_LOG_LEVEL", "debug",
		"MESHFAST_ADDR", "", // empty counts as unset
		"MESHFAST_EXPOSE_CHANNELS", `[{pattern: "^chat:", history: 5}, {name: news}]`,
		"MESHFAST_EXPOSE_PRESENCE", `[{name: lobby, ttl: 1m}]`,
	))
	if err != nil {
		t.Fatal(err)
	}
	s := l.Settings
	if s.Node.Engine.MaxConnections != 7 || s.Log.Level != slog.LevelDebug || s.Node.Engine.Addr != engine.DefaultAddr {
		t.Fatalf("scalars: %+v %v %q", s.Node.Engine.MaxConnections, s.Log.Level, s.Node.Engine.Addr)
	}
	ch := s.Node.Expose.Channels
	if len(ch) != 2 || ch[0].Pattern.String() != "^chat:" || ch[0].History != 5 || ch[1].Name != "news" {
		t.Fatalf("channels %+v", ch)
	}
	if p := s.Node.Expose.Presence; len(p) != 1 || p[0].TTL != time.Minute {
		t.Fatalf("presence %+v", p)
	}

	for _, tc := range []struct{ k, v, want string }{
		{"MESHFAST_MAX_MESSAGE_SIZE", "-5", `MESHFAST_MAX_MESSAGE_SIZE="-5": negative`},
		{"MESHFAST_LOG_FORMAT", "xml", `MESHFAST_LOG_FORMAT="xml": "xml" is neither`},
		{"MESHFAST_EXPOSE_CHANNELS", `[{name: a, history: x}]`, `MESHFAST_EXPOSE_CHANNELS="[{name: a, history: x}]": line 1: expose.channels[0].history: "x": not a whole number`},
		{"MESHFAST_EXPOSE_RECORDS", `[{name: a`, `MESHFAST_EXPOSE_RECORDS="[{name: a": yaml:`},
		{"MESHFAST_EXPOSE_RECORDS", `a`, `MESHFAST_EXPOSE_RECORDS="a": line 1: expose.records: not a list`},
	} {
		err := NewLoader().LoadEnv(env(tc.k, tc.v))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: got %v, want %s", tc.k, tc.v, err, tc.want)
		}
	}

	// Validate names the variable.
	l = NewLoader()
	if err := l.LoadEnv(env("MESHFAST_LOOPS", "99")); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), `MESHFAST_LOOPS="99": server: invalid configuration`) {
		t.Fatalf("Validate: %v", err)
	}
}

// TestPrecedence checks flag > env > file > default, key by key.
func TestPrecedence(t *testing.T) {
	l := NewLoader()
	file := "max_connections: 1\nmax_message_size: 1KiB\nloops: 1\nlog:\n  level: warn\n"
	if err := l.LoadFile("p.yaml", []byte(file)); err != nil {
		t.Fatal(err)
	}
	if err := l.LoadEnv(env("MESHFAST_MAX_MESSAGE_SIZE", "2KiB", "MESHFAST_LOOPS", "2", "MESHFAST_LOG_LEVEL", "error")); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	l.Flags(fs)
	if err := l.ParseFlags(fs, []string{"-loops", "3", "-log-level=debug"}); err != nil {
		t.Fatal(err)
	}
	e := l.Settings.Node.Engine
	if e.MaxConnections != 1 || e.MaxMessageSize != 2<<10 || e.Loops != 3 || e.MaxPendingBytes != DefaultSettings().Node.Engine.MaxPendingBytes ||
		l.Settings.Log.Level != slog.LevelDebug {
		t.Fatalf("file 1, env 2KiB, flag 3, default, flag debug: got %d %d %d %d %v", e.MaxConnections, e.MaxMessageSize, e.Loops, e.MaxPendingBytes, l.Settings.Log.Level)
	}
	// A flag's bad value is refused naming the flag.
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.Flags(fs)
	if err := l.ParseFlags(fs, []string{"-max-connections", "-1"}); err == nil || !strings.Contains(err.Error(), `invalid value "-1" for flag -max-connections: negative`) {
		t.Fatalf("bad flag: %v", err)
	}
	// Validate names the flag.
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	l.Flags(fs)
	if err := l.ParseFlags(fs, []string{"-path", "x"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), `-path "x": server: invalid configuration: mesh: invalid options: Path "x" does not start with "/"`) {
		t.Fatalf("Validate: %v", err)
	}
}

// TestMarshalReadsBack checks that what -print-config prints loads back
// as the same settings, for the defaults and for a file that sets every key.
func TestMarshalReadsBack(t *testing.T) {
	l := NewLoader()
	if err := l.LoadFile("good.yaml", []byte(goodFile)); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Settings{"defaults": DefaultSettings(), "good": l.Settings} {
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back := NewLoader()
		if err := back.LoadFile("printed.yaml", b); err != nil {
			t.Fatalf("%s: printed config does not load: %v\n%s", name, err, b)
		}
		if !equalSettings(back.Settings, s) {
			t.Fatalf("%s: read back differs:\n%s\nwas %+v\ngot %+v", name, b, s, back.Settings)
		}
	}
	// Every key is printed.
	b, _ := DefaultSettings().Marshal()
	for _, k := range Keys() {
		last := k.Path[strings.LastIndex(k.Path, ".")+1:]
		if !regexp.MustCompile(`(?m)^\s*` + last + `:`).Match(b) {
			t.Errorf("-print-config lacks %s:\n%s", k.Path, b)
		}
	}
}

// equalSettings compares settings, patterns by their source.
func equalSettings(a, b Settings) bool {
	norm := func(s Settings) Settings {
		x := &s.Node.Expose
		x.Channels = append([]ChannelExposure{}, x.Channels...)
		x.Records = append([]Exposure{}, x.Records...)
		x.WritableRecords = append([]Exposure{}, x.WritableRecords...)
		x.Presence = append([]PresenceExposure{}, x.Presence...)
		x.Rooms = append([]Exposure{}, x.Rooms...)
		s.Node.API.Keys = append([]string{}, s.Node.API.Keys...)
		s.Node.Mesh.AllowedOrigins = append([]string{}, s.Node.Mesh.AllowedOrigins...)
		s.Node.Streams.Gateway.Auth.Scopes = append([]string{}, s.Node.Streams.Gateway.Auth.Scopes...)
		fix := func(e *Exposure) {
			if e.Pattern != nil {
				e.Name, e.Pattern = "/"+e.Pattern.String(), nil
			}
		}
		for i := range x.Channels {
			fix(&x.Channels[i].Exposure)
		}
		for i := range x.Records {
			fix(&x.Records[i])
		}
		for i := range x.WritableRecords {
			fix(&x.WritableRecords[i])
		}
		for i := range x.Presence {
			fix(&x.Presence[i].Exposure)
		}
		for i := range x.Rooms {
			fix(&x.Rooms[i])
		}
		return s
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestKeys checks the names derived from the key table: no two keys share
// a variable or a flag, and every default goes through its own Set.
func TestKeys(t *testing.T) {
	envs, flags := map[string]string{}, map[string]string{}
	for _, k := range Keys() {
		if other, dup := envs[k.Env]; dup {
			t.Errorf("%s and %s share %s", k.Path, other, k.Env)
		}
		envs[k.Env] = k.Path
		if k.Flag != "" {
			if other, dup := flags[k.Flag]; dup {
				t.Errorf("%s and %s share -%s", k.Path, other, k.Flag)
			}
			flags[k.Flag] = k.Path
		}
		l := NewLoader()
		if err := l.LoadEnv(env(k.Env, k.Default)); err != nil {
			t.Errorf("%s's default %q does not load: %v", k.Path, k.Default, err)
		}
	}
	if envs["MESHFAST_ADDR"] != "addr" || envs["MESHFAST_LOG_FORMAT"] != "log.format" || envs["MESHFAST_EXPOSE_WRITABLE_RECORDS"] != "expose.writable_records" {
		t.Fatalf("env names: %v", envs)
	}
	if flags["max-message-size"] != "max_message_size" || flags["log-level"] != "log.level" {
		t.Fatalf("flag names: %v", flags)
	}
}

// TestExampleAndReadme checks that the example configuration loads and
// shows every key, and that the README's Configuration section names
// every key and variable.
func TestExampleAndReadme(t *testing.T) {
	data, err := os.ReadFile("../../examples/edge/meshfast.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLoader()
	if err := l.LoadFile("meshfast.yaml", data); err != nil {
		t.Fatal(err)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	x := l.Settings.Node.Expose
	if len(x.Channels) == 0 || x.Channels[0].Pattern == nil || x.Channels[0].History == 0 || len(x.Presence) == 0 || len(x.WritableRecords) == 0 {
		t.Fatalf("the example exposes no chat: %+v", x)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !l.set(k.Path) {
			t.Errorf("the example does not show %s", k.Path)
		}
		if !bytes.Contains(readme, []byte("`"+k.Path+"`")) || !bytes.Contains(readme, []byte(k.Env)) {
			t.Errorf("the README does not document %s (%s)", k.Path, k.Env)
		}
	}
}

// set reports whether a file, variable or flag set the key at path.
func (l *Loader) set(path string) bool { _, ok := l.from[path]; return ok }

// FuzzLoadFile feeds the loader arbitrary files: it must never panic, and a
// file it accepts must print as a configuration that loads back the same.
func FuzzLoadFile(f *testing.F) {
	f.Add([]byte(goodFile))
	f.Add([]byte("max_message_size: 64KiB\nidle_timeout: off\n"))
	f.Add([]byte("expose:\n  channels:\n    - &a {name: x, history: 2}\n    - *a\n"))
	f.Add([]byte("log: &l {format: json}\nexpose: *l\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("expose:\n  presence: [{pattern: '^r', ttl: 1h}]\n"))
	f.Add([]byte("expose:\n  records: [{name: 'null'}, {name: '~'}, {name: '#'}, {name: ' a'}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := NewLoader()
		if l.LoadFile("f.yaml", data) != nil {
			return
		}
		b, err := l.Settings.Marshal()
		if err != nil {
			t.Fatalf("accepted %q but cannot print it: %v", data, err)
		}
		back := NewLoader()
		if err := back.LoadFile("printed.yaml", b); err != nil {
			t.Fatalf("accepted %q, printed\n%s\nwhich does not load: %v", data, b, err)
		}
		if !equalSettings(back.Settings, l.Settings) {
			t.Fatalf("accepted %q, printed\n%s\nwhich loads differently", data, b)
		}
	})
}

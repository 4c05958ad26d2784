// Package ssetest reads Server-Sent Events the way a browser does, for
// tests: Parser follows the WHATWG HTML standard's event stream
// interpretation ("Server-sent events", 9.2.6) byte for byte, and Client is
// a raw-socket client that keeps the exact bytes of the response head and
// of every chunk, so tests can check the wire as well as what a browser
// would make of it.
//
// # Concurrency
//
// A Parser or a Client is used by one goroutine.
package ssetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Event is one dispatched event.
type Event struct {
	Type        string // "message" unless an event field set it
	Data        string
	LastEventID string // the source's last event ID once the event was dispatched
}

// Parser turns stream bytes into events. The zero value is ready.
type Parser struct {
	line    []byte
	data    []byte
	hasData bool // the data buffer holds something (even "")
	event   string
	lastID  string
	started bool // the first line has been read
	cr      bool // the last byte fed was a CR: an LF right after it ends nothing

	// Fields counts the fields seen, by name (comments under ":").
	Fields map[string]int
	// Retry is the last valid retry value, -1 if none was seen.
	Retry int
}

// Feed parses p and returns the events it completes.
func (p *Parser) Feed(b []byte) []Event {
	if p.Fields == nil {
		p.Fields = make(map[string]int)
		p.Retry = -1
	}
	var out []Event
	for _, c := range b {
		if p.cr && c == '\n' {
			p.cr = false
			continue
		}
		p.cr = c == '\r'
		if c == '\r' || c == '\n' {
			line := p.line
			if !p.started { // a BOM before the first line is dropped
				p.started = true
				line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
			}
			if ev, ok := p.processLine(line); ok {
				out = append(out, ev)
			}
			p.line = p.line[:0]
			continue
		}
		p.line = append(p.line, c)
	}
	return out
}

func (p *Parser) processLine(line []byte) (Event, bool) {
	if len(line) == 0 {
		return p.dispatch()
	}
	if line[0] == ':' {
		p.Fields[":"]++
		return Event{}, false
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	p.Fields[string(field)]++
	switch string(field) {
	case "event":
		p.event = string(value)
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
		p.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.lastID = string(value)
		}
	case "retry":
		if n, err := strconv.Atoi(string(value)); err == nil && len(value) > 0 && isDigits(value) {
			p.Retry = n
		}
	}
	return Event{}, false
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (p *Parser) dispatch() (Event, bool) {
	if !p.hasData {
		p.event = ""
		return Event{}, false
	}
	data := p.data
	if n := len(data); n > 0 && data[n-1] == '\n' {
		data = data[:n-1]
	}
	ev := Event{Type: p.event, Data: string(data), LastEventID: p.lastID}
	if ev.Type == "" {
		ev.Type = "message"
	}
	p.data, p.hasData, p.event = p.data[:0], false, ""
	return ev, true
}

// Client is a raw-socket SSE client: it sends a GET and reads the answer
// byte for byte.
type Client struct {
	Conn net.Conn
	br   *bufio.Reader
	// Head is the response head as received, CRLFCRLF included.
	Head string
	// Chunked says the body is in chunked transfer encoding.
	Chunked bool
	// Raw collects the body's bytes as they arrived on the wire (chunk
	// framing included).
	Raw    bytes.Buffer
	Parser Parser
	queue  []Event
	ended  bool // the last chunk came
}

// Dial connects to addr and sends a GET for target with the given extra
// header lines ("Name: value"), HTTP/1.1 unless proto says otherwise.
func Dial(addr, target, proto string, headers ...string) (*Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(false)
	}
	if proto == "" {
		proto = "HTTP/1.1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s %s\r\nHost: %s\r\n", target, proto, addr)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := nc.Write([]byte(b.String())); err != nil {
		nc.Close()
		return nil, err
	}
	return &Client{Conn: nc, br: bufio.NewReader(nc)}, nil
}

// ReadHead reads the response head. deadline bounds it.
func (c *Client) ReadHead(deadline time.Duration) (status int, err error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(deadline))
	var head strings.Builder
	for {
		line, err := c.br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			c.Head = head.String()
			return 0, fmt.Errorf("ssetest: head %q: %w", c.Head, err)
		}
		if line == "\r\n" {
			break
		}
	}
	c.Head = head.String()
	first, _, _ := strings.Cut(c.Head, "\r\n")
	parts := strings.SplitN(first, " ", 3)
	if len(parts) < 2 {
		return 0, fmt.Errorf("ssetest: status line %q", first)
	}
	status, err = strconv.Atoi(parts[1])
	if err != nil {
		return 0, fmt.Errorf("ssetest: status line %q", first)
	}
	c.Chunked = strings.Contains(strings.ToLower(c.Head), "\r\ntransfer-encoding: chunked\r\n")
	return status, nil
}

// ErrEnded is returned once a chunked body's last chunk has come.
var ErrEnded = errors.New("ssetest: the stream ended (last chunk)")

// ReadBody reads the next piece of the body: a whole chunk if the body is
// chunked (checking its framing), else what one read returns. The parser
// reads it too; Next returns the events it completed.
func (c *Client) ReadBody(deadline time.Duration) ([]byte, error) {
	if c.ended {
		return nil, ErrEnded
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(deadline))
	if !c.Chunked {
		buf := make([]byte, 4096)
		n, err := c.br.Read(buf)
		c.Raw.Write(buf[:n])
		c.queue = append(c.queue, c.Parser.Feed(buf[:n])...)
		return buf[:n], err
	}
	size, err := c.br.ReadString('\n')
	c.Raw.WriteString(size)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(size, "\r\n") {
		return nil, fmt.Errorf("ssetest: chunk size line %q does not end with CRLF", size)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(size, "\r\n"), 16, 32)
	if err != nil {
		return nil, fmt.Errorf("ssetest: chunk size line %q: %w", size, err)
	}
	p := make([]byte, n+2)
	if _, err := io.ReadFull(c.br, p); err != nil {
		c.Raw.Write(p)
		return nil, err
	}
	c.Raw.Write(p)
	if p[n] != '\r' || p[n+1] != '\n' {
		return nil, fmt.Errorf("ssetest: chunk of %d bytes not followed by CRLF: %q", n, p)
	}
	if n == 0 {
		c.ended = true
		return nil, ErrEnded
	}
	c.queue = append(c.queue, c.Parser.Feed(p[:n])...)
	return p[:n], nil
}

// Next returns the next dispatched event, reading as much as it takes.
func (c *Client) Next(deadline time.Duration) (Event, error) {
	end := time.Now().Add(deadline)
	for len(c.queue) == 0 {
		left := time.Until(end)
		if left <= 0 {
			return Event{}, fmt.Errorf("ssetest: no event within %v", deadline)
		}
		_, err := c.ReadBody(left)
		if err != nil && len(c.queue) == 0 {
			return Event{}, err
		}
	}
	ev := c.queue[0]
	c.queue = c.queue[1:]
	return ev, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

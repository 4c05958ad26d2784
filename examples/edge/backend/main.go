// Command backend is the application behind the example edge node
// (examples/edge/meshfast.yaml): a small HTTP server, standard library
// only, that does what a backend in any language does with meshfast:
//
//   - it issues the JSON Web Tokens clients connect with (GET /token?user=alice),
//     signed HS256 with the secret the edge node verifies them with
//     (jwt.hmac_secret): sub is the user, meta their Mesh metadata, allow
//     what they may use;
//   - it answers the command "chat/send" through the command proxy
//     (POST /mesh/command, proxy.command_url): it checks the message and
//     publishes it to the room's channel through meshfast's HTTP API
//     (POST /api/publish, with an api.keys key), where every subscriber on
//     every node gets it and the channel's history keeps it;
//   - any other proxied command is refused with Mesh's error shape.
//
// Run it beside the edge node (README, "The edge tier, step by step"):
//
//	go run ./examples/edge/backend
//	make run CONFIG=examples/edge/meshfast.yaml
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"sync/atomic"
	"syscall"
	"time"
)

// The example's development secrets: the same as in
// examples/edge/meshfast.yaml. Change both before anyone else can reach
// the node.
const (
	devSecret = "dev-only-secret-change-me-0123456789abcdef"
	devAPIKey = "dev-only-api-key-change-me"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "listen address")
	meshfast := flag.String("meshfast", "http://127.0.0.1:8080", "the edge node's base URL, for its HTTP API")
	secret := flag.String("secret", devSecret, "HS256 secret shared with the edge node (jwt.hmac_secret)")
	apiKey := flag.String("api-key", devAPIKey, "a key of the edge node's HTTP API (api.keys)")
	flag.Parse()
	b := newBackend(*secret, *apiKey)
	b.setMeshfast(*meshfast)
	srv := &http.Server{Addr: *addr, Handler: b.routes(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("backend on http://%s, publishing through %s", *addr, *meshfast)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// backend is the application's state: the secrets and where meshfast is.
type backend struct {
	secret   []byte
	apiKey   string
	meshfast atomic.Pointer[string]
	client   *http.Client
}

func newBackend(secret, apiKey string) *backend {
	return &backend{secret: []byte(secret), apiKey: apiKey, client: &http.Client{Timeout: 5 * time.Second}}
}

func (b *backend) setMeshfast(base string) { b.meshfast.Store(&base) }

func (b *backend) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", b.token)
	mux.HandleFunc("POST /mesh/command", b.command)
	return mux
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// token issues a token for ?user=NAME. A real backend would check a
// session or a password first; the example trusts the name.
func (b *backend) token(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	if !userRE.MatchString(user) {
		http.Error(w, "user: 1 to 32 letters, digits, _ or -", http.StatusBadRequest)
		return
	}
	tok, err := b.sign(map[string]any{
		"sub":  user,
		"exp":  time.Now().Add(time.Hour).Unix(),
		"meta": map[string]any{"name": user},
		// What this user may use, beyond the node's exposures: the chat
		// rooms and their channels, presence and topics.
		"allow": map[string]any{
			"channels":      []string{"^chat:"},
			"rooms":         []string{"^chat:"},
			"presence":      []string{"^chat:"},
			"write_records": []string{"^topic:"},
		},
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]string{"token": tok})
}

// sign makes an HS256 JWT of claims (RFC 7519): the header and claims in
// base64url, then their HMAC-SHA256.
func (b *backend) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, b.secret)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// commandCall is what meshfast's command proxy posts.
type commandCall struct {
	Command      string          `json:"command"`
	Payload      json.RawMessage `json:"payload"`
	ConnectionID string          `json:"connection_id"`
	User         string          `json:"user"`
	Metadata     json.RawMessage `json:"metadata"`
}

// command answers the commands no Go code on the node handles.
func (b *backend) command(w http.ResponseWriter, r *http.Request) {
	var call commandCall
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&call); err != nil {
		http.Error(w, "bad call", http.StatusBadRequest)
		return
	}
	switch call.Command {
	case "chat/send":
		b.chatSend(w, r.Context(), call)
	default:
		commandError(w, "ENOTFOUND", fmt.Sprintf("no command %q", call.Command))
	}
}

var roomRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// chatSend checks a chat message and publishes it to chat:ROOM through the
// edge node's API; the reply tells the sender it went out.
func (b *backend) chatSend(w http.ResponseWriter, ctx context.Context, call commandCall) {
	var req struct {
		Room string `json:"room"`
		Text string `json:"text"`
	}
	if json.Unmarshal(call.Payload, &req) != nil || !roomRE.MatchString(req.Room) {
		commandError(w, "EINVALID", `expected {"room": name, "text": message}`)
		return
	}
	if req.Text == "" || len(req.Text) > 2000 {
		commandError(w, "EEMPTY", "a message has 1 to 2000 bytes")
		return
	}
	msg, _ := json.Marshal(map[string]any{"user": call.User, "text": req.Text, "at": time.Now().UnixMilli()})
	if err := b.api(ctx, "/api/publish", map[string]any{"channel": "chat:" + req.Room, "message": string(msg)}); err != nil {
		log.Printf("publish: %v", err)
		commandError(w, "EPUBLISH", "the message could not be sent")
		return
	}
	writeJSON(w, map[string]any{"result": map[string]bool{"sent": true}})
}

// api calls an endpoint of meshfast's HTTP API.
func (b *backend) api(ctx context.Context, path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", *b.meshfast.Load()+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// commandError answers a proxied command with Mesh's error.
func commandError(w http.ResponseWriter, code, message string) {
	writeJSON(w, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

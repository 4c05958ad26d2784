package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// meshJSScript drives Mesh's own JavaScript client (npm @prsm/mesh)
// against the edge node: connect with a token, a command through the
// proxy, a room, a channel with history, a live message, the backend's
// error code. It prints one JSON line per step.
const meshJSScript = `
import { MeshClient } from "@prsm/mesh/client";
import WebSocket from "ws";
if (!globalThis.WebSocket) globalThis.WebSocket = WebSocket;
const [url, token] = process.argv.slice(2);
const out = (step, value) => console.log(JSON.stringify({ step, value }));
const timer = setTimeout(() => { out("timeout", true); process.exit(2); }, 20000);
const client = new MeshClient(url + "/?token=" + token, { shouldReconnect: false });
await client.connect();
out("connected", true);
out("proxy", await client.command("chat/send", { room: "js", text: "first" }));
const joined = await client.joinRoom("chat:js");
out("join", joined.success);
let resolveLive;
const live = new Promise((r) => (resolveLive = r));
// Mesh's client calls back with the history too: wait for the live one.
const sub = await client.subscribeChannel("chat:js", (m) => { if (JSON.parse(m).text === "live") resolveLive(m); }, { historyLimit: 5 });
out("subscribe", sub.success);
out("history", sub.history.map((m) => JSON.parse(m).text));
await client.command("chat/send", { room: "js", text: "live" });
out("live", JSON.parse(await live).text);
// Mesh's client resolves an error reply with its payload; it rejects only
// when it cannot send or times out.
try {
  const r = await client.command("chat/send", { room: "js" });
  out("error", r && r.code ? r.code : "none");
} catch (e) {
  out("error", "rejected: " + (e.code || e.message));
}
clearTimeout(timer);
await client.close();
process.exit(0);
`

// TestMeshJSClient runs Mesh's real JavaScript client, installed with the
// machine's npm into a temporary directory, against a meshfast process
// configured from examples/edge/meshfast.yaml. It is skipped, saying why,
// when npm or node is missing or npm cannot fetch the package (the npm
// registry reachable from this project's machines has no @prsm/mesh).
// MESHFAST_MESH_JS_DIR names a directory whose node_modules already holds
// @prsm/mesh and ws (for example the client built from nvms/prsm's source)
// to run it without npm.
func TestMeshJSClient(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: Mesh's JavaScript client cannot be run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := os.Getenv("MESHFAST_MESH_JS_DIR")
	if dir == "" {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm not installed: Mesh's JavaScript client cannot be run")
		}
		dir = t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"meshjs-check","private":true,"type":"module"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "@prsm/mesh", "ws")
		install.Dir = dir
		if out, err := install.CombinedOutput(); err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			t.Skipf("npm could not install @prsm/mesh (%v), so Mesh's JavaScript client was not run (MESHFAST_MESH_JS_DIR runs a prepared one):\n%s", err, strings.Join(lines[:min(len(lines), 6)], "\n"))
		}
	}
	script := filepath.Join(dir, "meshfast-check-"+strconv.Itoa(os.Getpid())+".mjs")
	t.Cleanup(func() { os.Remove(script) })
	if err := os.WriteFile(script, []byte(meshJSScript), 0o644); err != nil {
		t.Fatal(err)
	}

	b := newBackend(devSecret, devAPIKey)
	srv := httptest.NewServer(b.routes())
	defer srv.Close()
	n := startNode(t, srv.URL)
	b.setMeshfast("http://" + n.addr)

	run := exec.CommandContext(ctx, nodeBin, script, "ws://"+n.addr, getToken(t, srv.URL, "jsuser"))
	run.Dir = dir
	var stderr bytes.Buffer
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil {
		t.Fatalf("node: %v\nstdout:\n%s\nstderr:\n%s\nmeshfast:\n%s", err, out, stderr.String(), n.output())
	}
	steps := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var s struct {
			Step  string
			Value json.RawMessage
		}
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			steps[s.Step] = string(s.Value)
		}
	}
	for step, want := range map[string]string{
		"connected": `true`,
		"proxy":     `{"sent":true}`,
		"join":      `true`,
		"subscribe": `true`,
		"history":   `["first"]`,
		"live":      `"live"`,
		"error":     `"EEMPTY"`,
	} {
		if steps[step] != want {
			t.Errorf("%s: %s, want %s\nall: %v", step, steps[step], want, steps)
		}
	}
	n.stop(t)
}

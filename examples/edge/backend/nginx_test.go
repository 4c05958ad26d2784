package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/client"
)

// nginxConf is the README's reverse-proxy configuration ("TLS with a
// reverse proxy"), with the test's paths and ports: {{PREFIX}}, {{LISTEN}},
// {{UPSTREAM}}, {{CERT}}, {{KEY}}.
const nginxConf = `
worker_processes 1;
error_log {{PREFIX}}/error.log notice;
pid {{PREFIX}}/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path {{PREFIX}}/body;
    proxy_temp_path {{PREFIX}}/proxy;

    # Connection: upgrade for WebSocket handshakes, close for the rest.
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    upstream meshfast {
        server {{UPSTREAM}};
    }
    server {
        listen {{LISTEN}} ssl;
        ssl_certificate     {{CERT}};
        ssl_certificate_key {{KEY}};

        location / {
            proxy_pass http://meshfast;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # Mesh pings every 30 s: keep idle WebSockets open longer than that.
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }
}
`

// TestNginxTLS runs the README's nginx configuration in front of a real
// meshfast process: wss:// through nginx reaches the node (a token, a
// proxied command, a channel), and so does the HTTP API over https. It is
// skipped when nginx is not installed (Debian: apt-get install nginx-light).
func TestNginxTLS(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed: the README's TLS configuration was not run")
	}
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	for _, d := range []string{"body", "proxy"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b := newBackend(devSecret, devAPIKey)
	srv := httptest.NewServer(b.routes())
	defer srv.Close()
	n := startNode(t, srv.URL)
	b.setMeshfast("http://" + n.addr)

	// nginx cannot listen on port 0 and say which port it got: take a free
	// one and try again if another process takes it first.
	var listen string
	var run *exec.Cmd
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listen = l.Addr().String()
		l.Close()
		conf := strings.NewReplacer("{{PREFIX}}", dir, "{{LISTEN}}", listen, "{{UPSTREAM}}", n.addr,
			"{{CERT}}", certFile, "{{KEY}}", keyFile).Replace(nginxConf)
		confFile := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		run = exec.Command(nginx, "-p", dir, "-c", confFile, "-g", "daemon off;")
		run.Stderr = os.Stderr
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		up := false
		for i := 0; i < 100 && !up; i++ {
			if c, err := net.Dial("tcp", listen); err == nil {
				c.Close()
				up = true
			} else {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if up {
			break
		}
		_ = run.Process.Kill()
		_ = run.Wait()
		if attempt == 3 {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start:\n%s", log)
		}
	}
	defer func() {
		_ = run.Process.Signal(os.Interrupt)
		_ = run.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tlsConf := &tls.Config{InsecureSkipVerify: true} // the test's own self-signed certificate
	c := client.New("wss://"+listen+"/?token="+getToken(t, srv.URL, "tls"), client.Options{NoReconnect: true, TLSConfig: tlsConf,
		AwaitConnectionID: true, Dialer: (&net.Dialer{KeepAlive: -1}).DialContext})
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("wss:// through nginx: %v", err)
	}
	defer c.Close()
	got := make(chan string, 1)
	if r, err := c.SubscribeChannel(ctx, "chat:tls", func(m string) { got <- m }); err != nil || !r.Success {
		t.Fatal(r, err)
	}
	if out, err := c.Command(ctx, "chat/send", map[string]string{"room": "tls", "text": "over tls"}); err != nil || string(out) != `{"sent":true}` {
		t.Fatalf("a proxied command through nginx: %s %v", out, err)
	}
	select {
	case m := <-got:
		if !strings.Contains(m, `"text":"over tls"`) {
			t.Fatalf("message %s", m)
		}
	case <-ctx.Done():
		t.Fatal("no message through nginx")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, DisableKeepAlives: true}}
	req, _ := http.NewRequest("POST", "https://"+listen+"/api/publish", strings.NewReader(`{"channel":"chat:tls","message":"via api"}`))
	req.Header.Set("Authorization", "Bearer "+devAPIKey)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the API over https: %d %s", resp.StatusCode, body)
	}
	select {
	case m := <-got:
		if m != "via api" {
			t.Fatalf("message %s", m)
		}
	case <-ctx.Done():
		t.Fatal("no message from the API through nginx")
	}
	_ = c.Close()
	n.stop(t)
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

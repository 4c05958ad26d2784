package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfast/meshfast/internal/testutil"
)

// BenchmarkAPIPublish: durable events published per second through the
// HTTP API, per storage (memory, and Redis Streams on a private
// redis-server on loopback), one event per request from 32 concurrent
// clients, and 100 per publish_batch request from one. Each request is
// its own connection (the API answers and closes), as a backend without
// keep-alive would make it.
//
//	go test -run '^$' -bench APIPublish -benchtime 3s ./features/server/
func BenchmarkAPIPublish(b *testing.B) {
	r := testutil.StartRedis(b)
	for _, st := range []struct {
		name string
		cfg  Config
	}{
		{"memory", Config{}},
		{"redis", Config{Redis: RedisConfig{URL: "redis://" + r.Addr}}},
	} {
		cfg := st.cfg
		cfg.API = APIConfig{Keys: []string{testKey}}
		cfg.Engine.Addr = "127.0.0.1:0"
		n, err := Start(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.Shutdown(ctx)
		})
		url := "http://" + n.Addr().String() + "/api/streams/"
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: (&net.Dialer{KeepAlive: -1}).DialContext, MaxConnsPerHost: 0}}
		post := func(b *testing.B, path, body string) {
			req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+testKey)
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s: %d", path, resp.StatusCode)
			}
		}
		var room atomic.Uint64
		b.Run(st.name+"/single", func(b *testing.B) {
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				body := fmt.Sprintf(`{"room":"bench:%d","type":"message.created","payload":{"text":"%s","senderId":"user_1"}}`,
					room.Add(1)%4, strings.Repeat("x", 80))
				for pb.Next() {
					post(b, "publish", body)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(st.name+"/batch100", func(b *testing.B) {
			var body bytes.Buffer
			body.WriteString(`{"events":[`)
			for i := range 100 {
				if i > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"room":"bench:%d","type":"message.created","payload":{"text":"%s","senderId":"user_1"}}`, i%4, strings.Repeat("x", 80))
			}
			body.WriteString(`]}`)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				post(b, "publish_batch", body.String())
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

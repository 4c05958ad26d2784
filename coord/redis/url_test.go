package redis_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshfast/meshfast/coord/redis"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in         string
		addrs      []string
		user, pass string
		db         int
	}{
		{"redis://127.0.0.1:6379", []string{"127.0.0.1:6379"}, "", "", 0},
		{"127.0.0.1:7000", []string{"127.0.0.1:7000"}, "", "", 0},
		{"redis://localhost", []string{"localhost:6379"}, "", "", 0},
		{"redis://:secret@10.0.0.5/2", []string{"10.0.0.5:6379"}, "", "secret", 2},
		{"redis://user:p%40ss@10.0.0.5:6380", []string{"10.0.0.5:6380"}, "user", "p@ss", 0},
		{"redis://[::1]:6379", []string{"[::1]:6379"}, "", "", 0},
		{"redis://a:7000, redis://b:7001,c:7002", []string{"a:7000", "b:7001", "c:7002"}, "", "", 0},
		{"redis://:pw@a:7000,b:7001", []string{"a:7000", "b:7001"}, "", "pw", 0},
		{"redis://:pw@a:7000,redis://:pw@b:7001", []string{"a:7000", "b:7001"}, "", "pw", 0},
	} {
		o, err := redis.ParseURL(tc.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(o.Addrs, tc.addrs) || o.Username != tc.user || o.Password != tc.pass || o.DB != tc.db {
			t.Errorf("ParseURL(%q) = %+v", tc.in, o)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{" , ", "empty"},
		{"rediss://a:6379", "TLS"},
		{"http://a:6379", "scheme"},
		{"redis://a:notaport", "port"},
		{"redis://a:70000", "port"},
		{"redis://a:6379/x", "database"},
		{"redis://a:6379?db=1", "query"},
		{"redis://:one@a:1,redis://:two@b:2", "differs"},
		{"redis://", "no host"},
	} {
		_, err := redis.ParseURL(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q) = %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://127.0.0.1:6379", "a:1,b:2", "redis://u:p@h/3", "rediss://x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := redis.ParseURL(s)
		if err != nil {
			return
		}
		if len(o.Addrs) == 0 || o.DB < 0 {
			t.Fatalf("ParseURL(%q) = %+v without an error", s, o)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("ParseURL(%q) gave options Validate refuses: %v", s, err)
		}
	})
}

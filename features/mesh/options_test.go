package mesh

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshfast/meshfast/engine"
)

func TestOptionsValidate(t *testing.T) {
	for _, good := range []Options{
		{},
		{Path: "/chat", PingInterval: -1, LatencyInterval: -1, MaxMissedPongs: -1},
		{AllowedOrigins: []string{"https://app.example.com", "https://*.example.com"}, AuthTimeout: time.Second},
	} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Path: "chat"}, `Path "chat" does not start with "/" (did you mean "/chat"?)`},
		{Options{Path: "/chat?room=1"}, "no query"},
		{Options{Path: "/a b"}, "no query, fragment, space"},
		{Options{MaxQueuedCommands: -1}, "MaxQueuedCommands is negative"},
		{Options{MaxQueuedBytes: -1}, "MaxQueuedBytes is negative"},
		{Options{MaxInFlight: -1}, "MaxInFlight is negative"},
		{Options{Workers: -1}, "Workers is negative"},
		{Options{CoordTimeout: -time.Second}, "CoordTimeout is negative"},
		{Options{AuthTimeout: -time.Second}, "AuthTimeout is negative"},
		{Options{AllowedOrigins: []string{"https://ok.example.com", "https://app.example.com/"}}, `AllowedOrigins: "https://app.example.com/"`},
	} {
		err := tc.o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrInvalidOptions saying %s", tc.o, err, tc.want)
			continue
		}
		// New refuses them too, before touching the engine
		if _, err := New(engine.New(engine.Options{}), tc.o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New with %+v: %v", tc.o, err)
		}
	}
}

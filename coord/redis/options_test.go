package redis

import (
	"testing"
	"time"
)

func TestOptions(t *testing.T) {
	var zero Options
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	o := zero.withDefaults()
	if len(o.Addrs) != 1 || o.Addrs[0] != DefaultAddr || o.MaxFlushDelay != DefaultMaxFlushDelay ||
		o.Partitions != DefaultPartitions || o.SweepInterval != DefaultSweepInterval || o.Logger == nil {
		t.Fatalf("defaults = %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if o := (Options{MaxFlushDelay: -1, PipelineMultiplex: -1}).withDefaults(); o.MaxFlushDelay != 0 || o.PipelineMultiplex != -1 {
		t.Fatalf("explicit off: %+v", o)
	}
	for _, bad := range []Options{
		{Addrs: []string{""}},
		{Partitions: 1025},
		{DB: -1},
		{SweepInterval: time.Second, IdleSweepInterval: time.Millisecond},
		{ReconnectDelay: time.Second, MaxReconnectDelay: time.Millisecond},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", bad)
		}
	}
}

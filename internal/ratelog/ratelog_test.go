package ratelog

import (
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := &Limiter{Interval: time.Hour}
	if ok, n := l.Allow(); !ok || n != 0 {
		t.Fatalf("first: %v %d, want written", ok, n)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := l.Allow(); ok {
					t.Error("written within the interval")
				}
			}
		}()
	}
	wg.Wait()
	l.next.Store(0) // the interval is over
	if ok, n := l.Allow(); !ok || n != 800 {
		t.Fatalf("after the interval: %v %d, want written with 800 left out", ok, n)
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("written twice in a row")
	}
}

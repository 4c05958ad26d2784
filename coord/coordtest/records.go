package coordtest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/meshfast/meshfast/coord"
)

func wantRecord(t *testing.T, c coord.Coordinator, id, value string, version int64) {
	t.Helper()
	r := must1[coord.Record](t)(c.Record(bg(t), id))
	if r.Version != version {
		t.Fatalf("Record(%s).Version = %d, want %d", id, r.Version, version)
	}
	wantJSON(t, "Record("+id+").Value", r.Value, value)
}

func wantUpdate(t *testing.T, u coord.RecordUpdate, changed bool, version int64, old string) {
	t.Helper()
	if u.Changed != changed || u.Version != version {
		t.Fatalf("SetRecord = {Changed:%v Version:%d}, want {%v %d}", u.Changed, u.Version, changed, version)
	}
	wantJSON(t, "RecordUpdate.Old", u.Old, old)
}

var recordTests = []test{
	{"Versions", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		const id = "test:record:1"
		wantRecord(t, c, id, "", 0)
		v1 := `{"count":0,"name":"initial"}`
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(v1))), true, 1, "")
		wantRecord(t, c, id, v1, 1)
		// Unchanged values do not bump: same bytes, other key order,
		// other spelling of the same numbers, other whitespace.
		for _, same := range []string{v1, `{"name":"initial","count":0}`, `{"count":0.0,"name":"initial"}`, ` { "count" : 0e3 , "name":"initial" } `} {
			wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(same))), false, 1, v1)
		}
		wantRecord(t, c, id, v1, 1)
		v2 := `{"count":2,"name":"hello"}`
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(v2))), true, 2, v1)
		v3 := `{"name":"hello"}`
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(v3))), true, 3, v2)
		wantRecord(t, c, id, v3, 3)
		// Arrays are ordered.
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(`[1,2]`))), true, 4, v3)
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(`[2,1]`))), true, 5, `[1,2]`)
	}},
	{"PrimitiveValues", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		// C-record-14.
		const id = "test:record:primitive"
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(`"initial value"`))), true, 1, "")
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, id, b(`"updated value"`))), true, 2, `"initial value"`)
		wantRecord(t, c, id, `"updated value"`, 2)
		// Numbers and booleans change too (Mesh's diff misses these).
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "num", b(`5`))), true, 1, "")
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "num", b(`6`))), true, 2, `5`)
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "num", b(`6.0`))), false, 2, `6`)
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "num", b(`true`))), true, 3, `6`)
		// null on a missing record is no change; {} is one.
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "nul", b(`null`))), false, 0, "")
		wantRecord(t, c, "nul", "", 0)
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "nul", b(`{}`))), true, 1, "")
		wantUpdate(t, must1[coord.RecordUpdate](t)(c.SetRecord(ctx, "nul", b(`[]`))), true, 2, `{}`)
	}},
	{"InvalidJSON", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		for _, bad := range []string{`{"a":`, `nope`, `{} {}`, ``} {
			_, err := c.SetRecord(ctx, "bad", b(bad))
			if bad == `` {
				// Empty is either invalid or null (no change); never stored.
				wantRecord(t, c, "bad", "", 0)
				continue
			}
			wantErr(t, err, coord.ErrInvalidJSON)
		}
		wantRecord(t, c, "bad", "", 0)
	}},
	{"ConcurrentWritersGetDistinctVersions", func(t *testing.T, c coord.Coordinator) {
		concurrentRecordWriters(t, []coord.Coordinator{c})
	}},
	{"ConcurrentSameValueBumpsOnce", func(t *testing.T, c coord.Coordinator) {
		ctx := bg(t)
		const n = 32
		var wg sync.WaitGroup
		var mu sync.Mutex
		changed := 0
		for range n {
			wg.Go(func() {
				u, err := c.SetRecord(ctx, "same", b(`{"v":"same"}`))
				if err != nil {
					t.Errorf("SetRecord: %v", err)
					return
				}
				if u.Changed {
					mu.Lock()
					changed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if changed != 1 {
			t.Fatalf("%d writers changed the record, want 1", changed)
		}
		wantRecord(t, c, "same", `{"v":"same"}`, 1)
	}},
}

// concurrentRecordWriters has n goroutines, spread over the coordinators,
// each write a distinct value to one record: every write must get its own
// version, 1..n, and each Old must be a value that was written (or nil).
func concurrentRecordWriters(t *testing.T, cs []coord.Coordinator) {
	ctx := bg(t)
	const n = 48
	const id = "contended"
	var wg sync.WaitGroup
	versions := make([]int64, n)
	olds := make([]string, n)
	for i := range n {
		c := cs[i%len(cs)]
		wg.Go(func() {
			u, err := c.SetRecord(ctx, id, []byte(fmt.Sprintf(`{"writer":%d}`, i)))
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			if !u.Changed {
				t.Errorf("writer %d: not changed", i)
			}
			versions[i] = u.Version
			olds[i] = string(u.Old)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	sorted := slices.Clone(versions)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != int64(i+1) {
			t.Fatalf("versions = %v, want each of 1..%d once", sorted, n)
		}
	}
	// The writer of version k saw the value of version k-1 as Old.
	byVersion := make(map[int64]int, n)
	for i, v := range versions {
		byVersion[v] = i
	}
	for i, v := range versions {
		if v == 1 {
			if olds[i] != "" {
				t.Fatalf("version 1 Old = %s, want none", olds[i])
			}
			continue
		}
		want := fmt.Sprintf(`{"writer":%d}`, byVersion[v-1])
		wantJSON(t, fmt.Sprintf("Old of version %d", v), []byte(olds[i]), want)
	}
	r := must1[coord.Record](t)(cs[0].Record(ctx, id))
	if r.Version != n {
		t.Fatalf("final version %d, want %d", r.Version, n)
	}
	wantJSON(t, "final value", r.Value, fmt.Sprintf(`{"writer":%d}`, byVersion[n]))
}

package jsonx

import "testing"

// A record write: a user profile with a few members changed (the Diff
// inputs), the same value reordered and respelled (equal), and a small
// counter record.
var (
	benchOld       = []byte(`{"id":42,"name":"alice","online":true,"score":1280,"tags":["admin","beta"],"profile":{"age":31,"city":"Paris","langs":["fr","en"]}}`)
	benchNew       = []byte(`{"id":42,"name":"alice","online":false,"score":1295,"tags":["admin","beta","pro"],"profile":{"age":31,"city":"Lyon","langs":["fr","en"]}}`)
	benchReordered = []byte(`{"profile":{"langs":["fr","en"],"city":"Paris","age":31.0},"tags":["admin","beta"],"score":1.28e3,"online":true,"name":"alice","id":42}`)
	benchSmallA    = []byte(`{"count":1,"name":"a"}`)
	benchSmallB    = []byte(`{"count":2,"name":"a"}`)
	benchPatch     = []byte(`[{"op":"replace","path":"/profile/city","value":"Lyon"},{"op":"add","path":"/tags/2","value":"pro"},{"op":"replace","path":"/score","value":1295},{"op":"replace","path":"/online","value":false}]`)
)

func BenchmarkEqual(b *testing.B) {
	for _, bc := range []struct {
		name string
		a, b []byte
	}{
		{"differ", benchOld, benchNew},
		{"reordered", benchOld, benchReordered},
		{"small", benchSmallA, benchSmallB},
		{"same-bytes", benchOld, benchOld},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.a) + len(bc.b)))
			for b.Loop() {
				if _, err := Equal(bc.a, bc.b); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDiff(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.Run("AppendDiff", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchOld) + len(benchNew)))
		for b.Loop() {
			var err error
			if buf, err = AppendDiff(buf[:0], benchOld, benchNew); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Diff", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchOld) + len(benchNew)))
		for b.Loop() {
			if _, err := Diff(benchOld, benchNew); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkApply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(benchOld, benchPatch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMergeObjects(b *testing.B) {
	cur := []byte(`{"topic":"General","owner":"userA","settings":{"max":10},"private":false}`)
	partial := []byte(`{"topic":"Updated Topic","pinned":["m1","m2"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MergeObjects(cur, partial); err != nil {
			b.Fatal(err)
		}
	}
}

package pipeline

import (
	"bytes"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

func TestBox(t *testing.T) {
	strs := []string{"hello", "", "a,b\n"}
	ints := []int64{0, -1, 1 << 40}
	floats := []float64{0, -1.5, 1e300}
	times := []time.Time{{}, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))}
	var got, want []any
	for i := range strs {
		got = append(got, BoxString(&strs[i]), BoxInt64(&ints[i]), BoxFloat64(&floats[i]), BoxTime(&times[i]))
		want = append(want, strs[i], ints[i], floats[i], times[i])
	}
	set := map[any]int{}
	for i, v := range want {
		set[v] = i
	}
	for i, g := range got {
		w := want[i]
		if g != w {
			t.Errorf("%d: boxed %#v != %#v", i, g, w)
		}
		if !reflect.DeepEqual(g, w) || reflect.TypeOf(g) != reflect.TypeOf(w) {
			t.Errorf("%d: reflect: %#v (%T) vs %#v (%T)", i, g, g, w, w)
		}
		if j, ok := set[g]; !ok || j != i && want[j] != w {
			t.Errorf("%d: map lookup of %#v: %d %v", i, g, j, ok)
		}
		switch x := g.(type) {
		case string:
			if x != w.(string) {
				t.Errorf("%d: string %q", i, x)
			}
		case int64:
			if x != w.(int64) {
				t.Errorf("%d: int64 %d", i, x)
			}
		case float64:
			if x != w.(float64) {
				t.Errorf("%d: float64 %v", i, x)
			}
		case time.Time:
			if !x.Equal(w.(time.Time)) || x.Location() != w.(time.Time).Location() {
				t.Errorf("%d: time %v", i, x)
			}
		default:
			t.Errorf("%d: type %T", i, g)
		}
		if Text(g) != Text(w) {
			t.Errorf("%d: Text %q, want %q", i, Text(g), Text(w))
		}
	}
	// The boxed value refers to the element: no copy was made.
	v := BoxString(&strs[0])
	if (*eface)(unsafe.Pointer(&v)).data != unsafe.Pointer(&strs[0]) {
		t.Error("BoxString copied the value")
	}
	if n := testing.AllocsPerRun(100, func() { v = BoxString(&strs[0]); v = BoxTime(&times[1]) }); n != 0 {
		t.Errorf("boxing allocates %v times", n)
	}
}

// TestBoxKeepsAlive checks that boxed values keep their slice alive: only
// the interface values survive the function that built the slice.
func TestBoxKeepsAlive(t *testing.T) {
	build := func(i int) []any {
		strs := make([]string, 64)
		out := make([]any, len(strs))
		for j := range strs {
			strs[j] = string(AppendText([]byte("v"), int64(i*1000+j)))
			out[j] = BoxString(&strs[j])
		}
		return out
	}
	var rows [][]any
	for i := range 200 {
		rows = append(rows, build(i))
		if i%50 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i := range 1000 {
		_ = make([]string, 64+i%7) // reuse freed memory if it were freed
	}
	runtime.GC()
	for i, r := range rows {
		for j, v := range r {
			if want := "v" + Text(int64(i*1000+j)); v.(string) != want {
				t.Fatalf("row %d value %d = %q, want %q", i, j, v, want)
			}
		}
	}
}

func TestStringArena(t *testing.T) {
	var a StringArena
	var got, want []string
	src := []byte{}
	for i := range 5000 {
		src = append(src[:0], Text(int64(i*7919))...)
		if i%1000 == 999 {
			src = append(src, make([]byte, arenaChunk+i)...) // longer than a chunk
		}
		if i%10 == 0 {
			src = src[:0]
		}
		got = append(got, a.Copy(src))
		want = append(want, string(src))
		if len(src) > 0 {
			src[0] = 'x' // the copy must not alias src
		}
		if i%500 == 0 {
			runtime.GC()
		}
	}
	runtime.GC()
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("string %d = %q, want %q", i, got[i], want[i])
		}
	}
	b := []byte("hello")
	if n := testing.AllocsPerRun(100, func() { _ = a.Copy(b) }); n > 0.1 {
		t.Errorf("Copy allocates %v times per string", n)
	}
}

// BenchmarkStringArena copies 100-byte strings (a record's text) into a
// StringArena: the cost per byte of the copies and of the arena's chunks.
func BenchmarkStringArena(b *testing.B) {
	src := bytes.Repeat([]byte("0123456789"), 10)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	var a StringArena
	var keep string
	for b.Loop() {
		keep = a.Copy(src)
	}
	if keep != string(src) {
		b.Fatal("bad copy")
	}
}

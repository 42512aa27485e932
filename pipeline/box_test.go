package pipeline

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
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

// TestStringArenaBox checks values boxed with their headers in the arena
// (CopyBoxed, Box): they are the strings they were made from, for every
// way Go code looks at a string, and they stay so after collections that
// run while they are made (GOGC=1: the collector marks nearly all the
// time, so headers are written while it runs) and after the memory of
// everything else is reused: only the interface values keep their chunks
// alive.
func TestStringArenaBox(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	build := func(a *StringArena, i int) []any {
		rec := []byte(fmt.Sprintf("id-%d,name %d,,%s", i, i*7, strings.Repeat("z", i%300)))
		fields := bytes.Split(rec, []byte(","))
		text := a.CopyBoxed(rec, len(fields))
		out := make([]any, 0, len(fields))
		at := 0
		for _, f := range fields {
			out = append(out, a.Box(text[at:at+len(f)]))
			at += len(f) + 1
		}
		return out
	}
	want := func(i int) []string {
		return []string{fmt.Sprintf("id-%d", i), fmt.Sprintf("name %d", i*7), "", strings.Repeat("z", i%300)}
	}
	var a StringArena
	var rows [][]any
	for i := range 20000 {
		rows = append(rows, build(&a, i))
		if i%5000 == 0 {
			runtime.GC()
		}
	}
	a = StringArena{} // the arena no longer holds its last chunk
	overwriteFreed()
	for i, r := range rows {
		w := want(i)
		for j, v := range r {
			s, ok := v.(string)
			if !ok || s != w[j] || v != any(w[j]) {
				t.Fatalf("row %d value %d = %#v, want %q", i, j, v, w[j])
			}
		}
	}
	// Map keys and type switches see a string.
	m := map[any]int{rows[3][0]: 3}
	if m["id-3"] != 3 {
		t.Error("a boxed value is not the same map key as its string")
	}
	switch rows[3][1].(type) {
	case string:
	default:
		t.Errorf("type switch: %T", rows[3][1])
	}
	text := a.CopyBoxed([]byte("hello world"), 2)
	if n := testing.AllocsPerRun(1, func() { _ = a.Box(text[:5]) }); n != 0 {
		t.Errorf("Box allocates %v times", n)
	}
}

// TestStringArenaBoxRefuses checks that Box panics rather than box a
// string whose header could not share its chunk: one not from the last
// CopyBoxed, or past the room CopyBoxed reserved.
func TestStringArenaBoxRefuses(t *testing.T) {
	var a StringArena
	old := a.CopyBoxed([]byte("first"), 1)
	text := a.CopyBoxed([]byte("second"), 2)
	for name, f := range map[string]func(){
		"foreign string":   func() { a.Box(strings.Clone("x")) },
		"earlier text":     func() { a.Box(old[:2]) },
		"after Copy":       func() { a.Copy([]byte("plain")); a.Box(text[:1]) },
		"more than n":      func() { t := a.CopyBoxed([]byte("ab"), 1); a.Box(t[:1]); a.Box(t[1:]) },
		"zero StringArena": func() { var z StringArena; z.Box("x") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Box did not panic", name)
				}
			}()
			f()
		}()
	}
	if v := a.Box(""); v != any("") {
		t.Errorf("Box(\"\") = %#v", v)
	}
}

// TestAppendBoxed checks strings boxed after the bytes appended to a
// buffer, with and without room left for the header (then the string moves
// to a new chunk), across collections.
func TestAppendBoxed(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	var vals []any
	var wants []string
	buf := make([]byte, 0, 64)
	for i := range 20000 {
		s := strings.Repeat(string(rune('a'+i%26)), i%40)
		if cap(buf)-len(buf) < len(s) {
			buf = make([]byte, 0, 64+i%50) // small: often no room for the header
		}
		start := len(buf)
		buf = append(buf, s...)
		var v any
		buf, v = AppendBoxed(buf, start, 256)
		vals, wants = append(vals, v), append(wants, s)
	}
	buf = nil
	overwriteFreed()
	for i, v := range vals {
		if s, ok := v.(string); !ok || s != wants[i] {
			t.Fatalf("value %d = %#v, want %q", i, v, wants[i])
		}
	}
}

// overwriteFreed collects garbage and then fills freed memory of every size
// up to a chunk's with 'X's, so that a value whose bytes were freed reads
// differently.
func overwriteFreed() {
	runtime.GC()
	runtime.GC()
	var keep [][]byte
	for size := 1; size <= 4096; size += 1 + size/8 {
		for range 200 {
			keep = append(keep, bytes.Repeat([]byte{'X'}, size))
		}
	}
	for range 8 {
		keep = append(keep, bytes.Repeat([]byte{'X'}, arenaChunk))
	}
	runtime.KeepAlive(keep)
}

package salesforcesink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
	"github.com/bulkflow/bulkflow/sinks/salesforce/salesforcetest"
)

var matchSchema = pipeline.MustSchema(
	pipeline.Field{Name: "External_Id__c"}, pipeline.Field{Name: "Name"}, pipeline.Field{Name: "BillingCountry"},
	pipeline.Field{Name: "SLAExpirationDate__c"}, pipeline.Field{Name: "Active__c"}, pipeline.Field{Name: "Rating"},
)

// matchCells returns the cells of n uploaded rows of matchSchema, with one
// backing array as Write makes them.
func matchCells(n int) [][]string {
	countries := []string{"SE", "DE", "US", "FR", "JP"}
	ratings := []string{"Hot", "Warm", "Cold"}
	nf := matchSchema.Len()
	all := make([]string, 0, n*nf)
	cells := make([][]string, n)
	for i := range cells {
		all = append(all, fmt.Sprint(1000000+i), fmt.Sprintf("Account %d, Ltd.", i), countries[i%len(countries)],
			fmt.Sprintf("2022-09-%02d", 1+i%28), fmt.Sprint(i%2 == 0), ratings[i%len(ratings)])
		cells[i] = all[i*nf : (i+1)*nf : (i+1)*nf]
	}
	return cells
}

// resultsOf returns a successfulResults CSV echoing cells in the given
// order of batch indices, the way the emulator writes it.
func resultsOf(cells [][]string, order []int) []byte {
	var b bytes.Buffer
	b.WriteString(`"sf__Id","sf__Created",External_Id__c,Name,BillingCountry,SLAExpirationDate__c,Active__c,Rating` + "\n")
	for _, i := range order {
		fmt.Fprintf(&b, `"001Hs%010dIAQ","true"`, i)
		for _, v := range cells[i] {
			b.WriteString(`,"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// newMatchState returns a sink, a batch of the cells and a chunk of all of
// its rows, as Write prepares them.
func newMatchState(cells [][]string, wantIDs bool) (*Sink, *batchState, *chunk) {
	s := &Sink{schema: matchSchema, idCol: 0}
	n := len(cells)
	st := &batchState{cells: cells, errs: make([]error, n), ok: make([]bool, n)}
	if wantIDs {
		st.ids = make([]string, n)
	}
	c := &chunk{rows: make([]int, n)}
	for i := range c.rows {
		c.rows[i] = i
	}
	return s, st, c
}

// TestMatcherRead matches a results file of several reader buffers: in
// reverse order (the hash index), with two rows of one external id whose
// Name came back changed (by id), and WriteIDs. Nothing the matcher or
// collect keeps may alias the reader's reused buffer.
func TestMatcherRead(t *testing.T) {
	const n = 3000
	cells := matchCells(n)
	const a, b = 5, n - 10 // the same external id
	cells[b][0] = cells[a][0]
	order := make([]int, n)
	for p := range order {
		order[p] = n - 1 - p
	}
	echoed := make([][]string, n)
	for i, row := range cells {
		echoed[i] = append([]string(nil), row...)
	}
	echoed[a][1], echoed[b][1] = "renamed", "renamed"
	data := resultsOf(echoed, order)
	if len(data) < 4*64<<10 {
		t.Fatalf("results of %d bytes fit in few reader buffers", len(data))
	}
	s, st, c := newMatchState(cells, true)
	m := newMatcher(s, st, c)
	got := map[int]int{} // batch index → index the result was written for
	err := m.read(bytes.NewReader(data), func(i int, r *salesforce.ResultRow) {
		if i < 0 {
			t.Fatalf("line %d unmatched", r.Line)
		}
		var from int
		fmt.Sscanf(r.ID, "001Hs%010dIAQ", &from)
		got[i] = from
		st.succeed(i)
		st.setID(i, strings.Clone(r.ID))
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		want := i
		switch i { // matched in upload order, and the results come reversed
		case a:
			want = b
		case b:
			want = a
		}
		if got[i] != want || st.ids[i] != fmt.Sprintf("001Hs%010dIAQ", want) {
			t.Fatalf("row %d matched the result for %d, id %q", i, got[i], st.ids[i])
		}
	}
}

// TestCollectKeepsCopies: the ids and the row errors a Write returns were
// read from results files several reader buffers long, whose memory the
// reader reuses; they must be the ones of their rows.
func TestCollectKeepsCopies(t *testing.T) {
	srv := salesforcetest.NewServer(&salesforcetest.Options{Compression: salesforcetest.CompressionNever})
	defer srv.Close()
	ctx := context.Background()
	s := openAccounts(t, ctx, srv)
	const n = 3000
	rows := genAccounts(n, 0, "K")
	b := pipeline.NewBatch(accountSchema, n)
	for i, r := range rows {
		if i%10 == 3 {
			r[1] = fmt.Sprintf("%s %d", strings.Repeat("x", 300), i) // STRING_TOO_LONG
		}
		b.Append(r, pipeline.Origin{})
	}
	ids, err := s.WriteIDs(ctx, b)
	var re *pipeline.RowErrors
	if !errors.As(err, &re) || len(re.Failures) != n/10 {
		t.Fatalf("WriteIDs: %v", err)
	}
	stored := map[string]string{}
	for _, rec := range srv.Records("Account") {
		stored[rec["External_Id__c"]] = rec["Id"]
	}
	for i, r := range rows {
		if want := stored[r[0].(string)]; ids[i] != want {
			t.Fatalf("row %d: id %q, want %q", i, ids[i], want)
		}
	}
	for _, f := range re.Failures {
		var e *pipeline.RowError
		if !errors.As(f.Err, &e) || e.Code != "STRING_TOO_LONG" || e.Field != "Name" || !strings.Contains(e.Error(), rows[f.Index][1].(string)+" (max length") {
			t.Fatalf("row %d: %#v", f.Index, f.Err)
		}
	}
}

// BenchmarkMatcherRead matches a 100,000-row successfulResults file with
// its chunk as collect does: in upload order with and without WriteIDs, and
// shuffled (the hash index).
//
//	go test -run '^$' -bench MatcherRead -count 5 ./sinks/salesforcesink/
func BenchmarkMatcherRead(b *testing.B) {
	const n = 100000
	cells := matchCells(n)
	inOrder := make([]int, n)
	for i := range inOrder {
		inOrder[i] = i
	}
	shuffled := append([]int(nil), inOrder...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, bc := range []struct {
		name  string
		order []int
		ids   bool
	}{{"in_order", inOrder, false}, {"in_order_ids", inOrder, true}, {"shuffled", shuffled, false}} {
		b.Run(bc.name, func(b *testing.B) {
			data := resultsOf(cells, bc.order)
			s, st, c := newMatchState(cells, bc.ids)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				clear(st.ok)
				clear(st.ids)
				st.loaded = 0
				m := newMatcher(s, st, c)
				err := m.read(bytes.NewReader(data), func(i int, r *salesforce.ResultRow) {
					if i < 0 {
						b.Fatalf("unmatched line %d", r.Line)
					}
					st.succeed(i)
					if st.ids != nil {
						st.setID(i, strings.Clone(r.ID))
					}
				})
				if err != nil || st.loaded != n {
					b.Fatal(err, st.loaded)
				}
			}
		})
	}
}

// TestMatcherEchoSameMatches plays random result files against a chunk
// twice, once with the rows' plain flags (the matcher compares results
// with the expected row as it reads them: ResultReader.ReadEcho) and once
// without (every result split into fields, then compared): every result
// must match the same row either way. The files mix in-order rows, gaps,
// shuffled stretches, changed values, rows with identical cells, cells
// that need quotes, and headers that reorder or leave out columns.
func TestMatcherEchoSameMatches(t *testing.T) {
	names := matchSchema.Names()
	enc := newEncoder(matchSchema, salesforce.DelimiterComma, salesforce.LineEndingLF)
	echoedTotal, results := 0, 0
	for seed := range uint64(60) {
		r := rand.New(rand.NewPCG(seed, 23))
		n := 50 + r.IntN(400)
		cells := matchCells(n)
		for i := range cells {
			cells[i][1] = strings.ReplaceAll(cells[i][1], ",", "") // no quotes needed
			switch r.IntN(12) {
			case 0:
				cells[i][1] = `say "hi"` // quoted, doubled quotes
			case 1:
				cells[i][1] = "two\nlines"
			case 2:
				if i > 0 && seed%4 == 0 {
					copy(cells[i], cells[i-1]) // identical rows
				}
			case 3:
				cells[i][2] = "a, b" // the delimiter
			}
		}
		// The result columns: all in order, reordered, or some left out.
		cols := []int{0, 1, 2, 3, 4, 5}
		switch seed % 3 {
		case 1:
			r.Shuffle(len(cols)-1, func(a, b int) { cols[a+1], cols[b+1] = cols[b+1], cols[a+1] }) // the external id first
		case 2:
			cols = []int{0, 2, 1, 5}
		}
		var order []int
		for i := range n {
			if r.IntN(10) > 0 { // a gap: the row's result is in another file
				order = append(order, i)
			}
		}
		for k := 0; k+5 < len(order); k += 40 + r.IntN(40) {
			r.Shuffle(5, func(a, b int) { order[k+a], order[k+b] = order[k+b], order[k+a] })
		}
		var b bytes.Buffer
		b.WriteString(`"sf__Id","sf__Created"`)
		for _, c := range cols {
			b.WriteString("," + names[c])
		}
		b.WriteByte('\n')
		for _, i := range order {
			fmt.Fprintf(&b, `"001Hs%010dIAQ","true"`, i)
			for _, c := range cols {
				v := cells[i][c]
				if r.IntN(50) == 0 {
					v += "!" // Salesforce echoed another value
				}
				if r.IntN(3) == 0 && !strings.ContainsAny(v, "\",\n") {
					b.WriteString("," + v) // unquoted
				} else {
					b.WriteString(`,"` + strings.ReplaceAll(v, `"`, `""`) + `"`)
				}
			}
			b.WriteByte('\n')
		}
		play := func(plain bool) ([]string, int, int) {
			s, st, c := newMatchState(cells, false)
			if plain {
				st.plain = make([]bool, n)
				for i := range cells {
					st.plain[i] = !bytes.Contains(enc.record(nil, cells[i]), []byte{'"'})
				}
			}
			m := newMatcher(s, st, c)
			var got []string // per result: the row matched, its line and values
			if err := m.read(bytes.NewReader(b.Bytes()), func(i int, row *salesforce.ResultRow) {
				got = append(got, fmt.Sprintf("%d@%d %q %q", i, row.Line, row.ID, row.Values))
			}); err != nil {
				t.Fatal(err)
			}
			return got, m.unmatched, m.echoed
		}
		want, wantUnmatched, _ := play(false)
		got, gotUnmatched, echoed := play(true)
		if fmt.Sprint(got) != fmt.Sprint(want) || gotUnmatched != wantUnmatched {
			t.Fatalf("seed %d: matched %v (%d unmatched) with plain rows, %v (%d unmatched) without", seed, got, gotUnmatched, want, wantUnmatched)
		}
		echoedTotal += echoed
		results += len(order)
	}
	// About half the rows need no quotes and come after the row before
	// them (or a gap, which the next result of rows that all differ
	// skips).
	if echoedTotal < results/3 {
		t.Fatalf("%d of %d results matched by ReadEcho", echoedTotal, results)
	}
	t.Logf("%d of %d results matched by ReadEcho", echoedTotal, results)
}

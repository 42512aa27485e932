package bench

import "testing"

// TestPaired checks the median of per-pair ratios against hand-computed
// cases, including one where dividing the medians gives another verdict.
func TestPaired(t *testing.T) {
	for _, tc := range []struct {
		name      string
		x, y      []float64
		want      Ratio
		wantS     string
		met1_0    bool
		straddles bool // pairs on both sides of 1.0
	}{
		{"none", nil, nil, Ratio{}, "-", false, false},
		{"one", []float64{3}, []float64{2}, Ratio{1.5, 1.5, 1.5, 1}, "1.50x (1 pair)", false, false},
		// Medians 4 and 4 would give 1.00x; the pairs say x is slower
		// in two pairs of three.
		{"drift", []float64{2, 4, 9}, []float64{1, 8, 4}, Ratio{2, 0.5, 2.25, 3}, "2.00x (0.50-2.25, 3 pairs)", false, true},
		{"unmeasured pairs skipped", []float64{1, 0, 2}, []float64{2, 5, 0}, Ratio{0.5, 0.5, 0.5, 1}, "0.50x (1 pair)", true, false},
		{"even", []float64{1, 1, 1, 1}, []float64{1, 2, 4, 0.5}, Ratio{0.75, 0.25, 2, 4}, "0.75x (0.25-2.00, 4 pairs)", true, true},
		{"every pair above", []float64{3, 5}, []float64{2, 4}, Ratio{1.375, 1.25, 1.5, 2}, "1.38x (1.25-1.50, 2 pairs)", false, false},
		{"every pair at or below", []float64{1, 2}, []float64{1, 4}, Ratio{0.75, 0.5, 1, 2}, "0.75x (0.50-1.00, 2 pairs)", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Paired(tc.x, tc.y)
			if s := got.Straddles(1.0); s != tc.straddles {
				t.Errorf("Paired(%v, %v).Straddles(1.0) = %v, want %v", tc.x, tc.y, s, tc.straddles)
			}
			if got != tc.want || got.String() != tc.wantS || got.Met(1.0) != tc.met1_0 {
				t.Errorf("Paired(%v, %v) = %+v %q met %v; want %+v %q met %v", tc.x, tc.y, got, got, got.Met(1.0), tc.want, tc.wantS, tc.met1_0)
			}
		})
	}
}

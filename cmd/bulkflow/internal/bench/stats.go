package bench

import (
	"fmt"
	"math"
)

// Ratio is a paired ratio: the median of the per-pair ratios x[i]/y[i]
// of runs made side by side (run i of x next to run i of y), with their
// range. Dividing the median of x by the median of y instead lets a
// machine that drifts (another job starts, the CPU throttles) flatter or
// spoil one side: a pair shares the drift of its moment.
type Ratio struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Pairs  int     `json:"pairs"`
}

// Paired returns the Ratio of x to y over the pairs where both are
// measured (positive); a zero Ratio when there is none.
func Paired(x, y []float64) Ratio {
	var rs []float64
	for i := range min(len(x), len(y)) {
		if x[i] > 0 && y[i] > 0 {
			rs = append(rs, x[i]/y[i])
		}
	}
	if len(rs) == 0 {
		return Ratio{}
	}
	r := Ratio{Median: Median(rs), Min: math.Inf(1), Max: math.Inf(-1), Pairs: len(rs)}
	for _, v := range rs {
		r.Min, r.Max = min(r.Min, v), max(r.Max, v)
	}
	return r
}

// String formats r as "0.83x (0.79-0.88, 5 pairs)", or "-" when unmeasured.
func (r Ratio) String() string {
	if r.Pairs == 0 {
		return "-"
	}
	if r.Pairs == 1 {
		return fmt.Sprintf("%.2fx (1 pair)", r.Median)
	}
	return fmt.Sprintf("%.2fx (%.2f-%.2f, %d pairs)", r.Median, r.Min, r.Max, r.Pairs)
}

// Met reports whether the ratio was measured and its median is at most
// limit.
func (r Ratio) Met(limit float64) bool { return r.Pairs > 0 && r.Median <= limit }

// Straddles reports whether some pairs are at most limit and others above
// it: the verdict Met gives then rests on which side the median of these
// few pairs fell, which another invocation on the same code may not
// repeat (more pairs, --runs, narrow it).
func (r Ratio) Straddles(limit float64) bool {
	return r.Pairs > 1 && r.Min <= limit && r.Max > limit
}

// Package bench is the load generator behind `ecache bench`: a workload
// (GET:SET mix, key distribution, value sizes), drivers for ecache's native
// protocol (the Go SDK) and for RESP (go-redis, so the same generator drives
// Redis or ecache's RESP listener), closed- and open-loop scheduling,
// HdrHistogram latency recording, and JSON/HTML/text reports.
package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Workload describes the requests a run sends.
type Workload struct {
	// Gets and Sets are the GET:SET ratio (9:1 = nine GETs per SET).
	Gets, Sets int
	// Keys is the keyspace size: keys are "key:0" … "key:<Keys-1>".
	Keys int
	// Zipf is the skew of a zipfian key distribution; 0 means uniform.
	Zipf float64
	// ValueMin and ValueMax bound the value sizes (uniform between them).
	ValueMin, ValueMax int
	// Seed makes the generated sequence reproducible.
	Seed uint64

	// zipf, set by Prepared, is the zipf table shared (read-only) by every
	// generator of a run: building it is O(Keys).
	zipf *zipfGen
}

// Prepared returns w with what its generators share computed once: the
// zipf normalisation, a sum over every key, which would otherwise be
// recomputed by every worker's generator in every phase.
func (w Workload) Prepared() Workload {
	if w.Zipf > 0 && w.Zipf < 1 && (w.zipf == nil || w.zipf.n != w.Keys || w.zipf.theta != w.Zipf) {
		w.zipf = newZipf(w.Keys, w.Zipf)
	}
	return w
}

// DefaultWorkload is 9:1 GET:SET over 1M uniform keys with 100-byte values.
func DefaultWorkload() Workload {
	return Workload{Gets: 9, Sets: 1, Keys: 1_000_000, ValueMin: 100, ValueMax: 100, Seed: 1}
}

// Validate reports the first unusable field.
func (w Workload) Validate() error {
	switch {
	case w.Gets < 0 || w.Sets < 0 || w.Gets+w.Sets == 0:
		return fmt.Errorf("ratio %d:%d: need non-negative parts, not both zero", w.Gets, w.Sets)
	case w.Keys < 1:
		return fmt.Errorf("keys %d: need at least 1", w.Keys)
	case w.Zipf < 0 || w.Zipf == 1:
		return fmt.Errorf("zipf %v: need a skew > 0 other than 1", w.Zipf)
	case w.ValueMin < 0 || w.ValueMax < w.ValueMin:
		return fmt.Errorf("value size %d-%d: need 0 <= min <= max", w.ValueMin, w.ValueMax)
	}
	return nil
}

// Dist describes the key distribution ("uniform" or "zipf:S").
func (w Workload) Dist() string {
	if w.Zipf == 0 {
		return "uniform"
	}
	return "zipf:" + strconv.FormatFloat(w.Zipf, 'g', -1, 64)
}

// ParseRatio parses "GET:SET", e.g. "9:1".
func ParseRatio(s string) (gets, sets int, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		gets, err = strconv.Atoi(a)
		if err == nil {
			sets, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || gets < 0 || sets < 0 || gets+sets == 0 {
		return 0, 0, fmt.Errorf("ratio %q: want GET:SET, e.g. 9:1", s)
	}
	return gets, sets, nil
}

// ParseDist parses "uniform" or "zipf:S" and returns the zipf skew (0 for
// uniform).
func ParseDist(s string) (float64, error) {
	if s == "uniform" {
		return 0, nil
	}
	if v, ok := strings.CutPrefix(s, "zipf:"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && f > 0 && f != 1 && !math.IsInf(f, 0) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("dist %q: want uniform or zipf:S with S > 0, S != 1 (e.g. zipf:0.99)", s)
}

// ParseValueSize parses "N" or "MIN-MAX" bytes.
func ParseValueSize(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err = strconv.Atoi(a)
	hi = lo
	if err == nil && ok {
		hi, err = strconv.Atoi(b)
	}
	if err != nil || lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("value size %q: want N or MIN-MAX bytes", s)
	}
	return lo, hi, nil
}

// Key names key number i.
func Key(i int) string { return "key:" + strconv.Itoa(i) }

// Generator produces one worker's sequence of operations. It is not safe
// for concurrent use; give each worker its own (NewGenerator with the
// worker's index).
type Generator struct {
	w    Workload
	rng  *rand.Rand
	n    uint64 // operations generated
	zipf *zipfGen
	stdz *rand.Zipf
	val  []byte
}

// NewGenerator returns the generator of worker id.
func NewGenerator(w Workload, id int) *Generator {
	g := &Generator{w: w, rng: rand.New(rand.NewPCG(w.Seed, uint64(id)*0x9e3779b97f4a7c15+1))}
	switch {
	case w.Zipf > 1:
		g.stdz = rand.NewZipf(g.rng, w.Zipf, 1, uint64(w.Keys-1))
	case w.Zipf > 0:
		g.zipf = w.Prepared().zipf
	}
	g.val = make([]byte, w.ValueMax)
	for i := range g.val {
		g.val[i] = 'a' + byte(g.rng.IntN(26))
	}
	return g
}

// IsGet says whether the next operation is a GET. The mix is exact: of
// any n consecutive operations from the start, the GETs number
// floor(n*Gets/(Gets+Sets)).
func (g *Generator) IsGet() bool {
	t := uint64(g.w.Gets + g.w.Sets)
	n := g.n
	g.n++
	return (n+1)*uint64(g.w.Gets)/t > n*uint64(g.w.Gets)/t
}

// KeyIndex draws a key number in [0, Keys).
func (g *Generator) KeyIndex() int {
	switch {
	case g.stdz != nil:
		return int(g.stdz.Uint64())
	case g.zipf != nil:
		return g.zipf.next(g.rng.Float64())
	}
	return g.rng.IntN(g.w.Keys)
}

// ValueSize draws a value size in [ValueMin, ValueMax].
func (g *Generator) ValueSize() int {
	if g.w.ValueMax == g.w.ValueMin {
		return g.w.ValueMin
	}
	return g.w.ValueMin + g.rng.IntN(g.w.ValueMax-g.w.ValueMin+1)
}

// Next fills op with the next operation. A SET's value aliases the
// generator's buffer: do not modify it.
func (g *Generator) Next(op *Op) {
	op.Get = g.IsGet()
	op.Key = Key(g.KeyIndex())
	op.Value = nil
	if !op.Get {
		op.Value = g.val[:g.ValueSize()]
	}
}

// Value returns a value of a drawn size, for preloading.
func (g *Generator) Value() []byte { return g.val[:g.ValueSize()] }

// zipfGen draws zipfian ranks for skews in (0,1) (and >1 too, though
// math/rand's Zipf is used there): Gray et al., "Quickly generating
// billion-record synthetic databases", as in YCSB. Rank 0 is the hottest.
type zipfGen struct {
	n                   int
	theta, alpha, zetan float64
	eta, half           float64
}

func newZipf(n int, theta float64) *zipfGen {
	zeta := func(n int) float64 {
		s := 0.0
		for i := 1; i <= n; i++ {
			s += 1 / math.Pow(float64(i), theta)
		}
		return s
	}
	z := &zipfGen{n: n, theta: theta, alpha: 1 / (1 - theta), zetan: zeta(n)}
	z.half = 1 + math.Pow(0.5, theta)
	if n > 1 {
		z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2)/z.zetan)
	}
	return z
}

func (z *zipfGen) next(u float64) int {
	uz := u * z.zetan
	if uz < 1 || z.n == 1 {
		return 0
	}
	if uz < z.half {
		return 1
	}
	r := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	if r >= z.n {
		r = z.n - 1
	}
	if r < 0 {
		r = 0
	}
	return r
}

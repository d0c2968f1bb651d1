package coldstart

import (
	"testing"
	"time"
)

func TestMedianIgnoresOneSlowStart(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{3 * ms, 90 * ms, 1 * ms}, 3 * ms},
		{[]time.Duration{4 * ms, 2 * ms, 80 * ms, 6 * ms}, 5 * ms},
	} {
		in := append([]time.Duration(nil), c.in...)
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if c.in[0] != in[0] {
			t.Errorf("median reordered its argument")
		}
	}
}

package lifecycle

import "testing"

func TestAppliedExpiries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		capacity int
		add      [][]trialGen
		take     []trialGen
		want     []bool
	}{
		{"each answered once", 4, [][]trialGen{{{1, 1}, {2, 1}}},
			[]trialGen{{1, 1}, {1, 1}, {2, 1}}, []bool{true, false, true}},
		{"another generation is not the same expiry", 4, [][]trialGen{{{1, 1}}},
			[]trialGen{{1, 2}, {1, 1}}, []bool{false, true}},
		{"the oldest pushed out beyond capacity", 2, [][]trialGen{{{1, 1}, {2, 1}}, {{3, 1}}},
			[]trialGen{{1, 1}, {2, 1}, {3, 1}}, []bool{false, true, true}},
		{"a ring that wrapped twice keeps the newest", 2, [][]trialGen{{{1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}},
			[]trialGen{{3, 1}, {4, 1}, {5, 1}}, []bool{false, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAppliedExpiries(tt.capacity)
			for _, batch := range tt.add {
				a.add(batch)
			}
			for i, k := range tt.take {
				if got := a.take(k.id, k.gen); got != tt.want[i] {
					t.Errorf("take(%v) #%d = %v, want %v", k, i, got, tt.want[i])
				}
			}
			if len(a.set) > tt.capacity {
				t.Errorf("holds %d entries, capacity %d", len(a.set), tt.capacity)
			}
		})
	}
}

package main

import (
	"testing"
	"time"
)

// level is one mode at one concurrency: its rate in each round, the
// latency of every acknowledgement, and the server's peak RSS.
type level struct {
	rates []float64
	lat   time.Duration
	rss   float64
}

// runOf builds a run's rounds from its levels (group commit and naive, at
// 1 and 64 senders), and their summary as the bench makes it.
func runOf(levels map[string]map[int]level) (summary, rows []row) {
	var modes []string
	for _, mode := range []string{groupMode, naiveMode} {
		if _, ok := levels[mode]; ok {
			modes = append(modes, mode)
		}
	}
	var senders []int
	for _, c := range []int{1, 64} {
		if _, ok := levels[groupMode][c]; ok {
			senders = append(senders, c)
		}
	}
	for _, mode := range modes {
		for _, c := range senders {
			l := levels[mode][c]
			for round, rate := range l.rates {
				lat := make([]time.Duration, 100)
				for i := range lat {
					lat[i] = l.lat
				}
				rows = append(rows, row{mode: mode, senders: c, round: round, rate: rate, lat: lat, wholeLat: lat, rssMiB: l.rss})
			}
		}
	}
	return summarise(rows, senders, modes), rows
}

func verdicts(gs []goal) map[string]bool {
	out := map[string]bool{}
	for _, g := range gs {
		out[g.name] = g.met
	}
	return out
}

const (
	vsCopyGoal  = "events/s at 64 senders >= 0.35 x COPY"
	vsNaiveGoal = "events/s at 64 senders >= 4 x naive"
	p99Goal     = "p99 at 64 senders <= 50ms"
	p50Goal     = "p50 at 1 sender <= naive + 1ms"
	rssGoal     = "peak RSS of every server <= 256 MiB"
)

func TestGoalsJudgeARun(t *testing.T) {
	copyRates := []float64{10000, 10000, 10000}
	good := func() map[string]map[int]level {
		return map[string]map[int]level{
			groupMode: {
				1:  {rates: []float64{500, 500, 500}, lat: 1500 * time.Microsecond, rss: 90},
				64: {rates: []float64{4500, 4400, 4600}, lat: 30 * time.Millisecond, rss: 90},
			},
			naiveMode: {
				1:  {rates: []float64{500, 500, 500}, lat: 1400 * time.Microsecond, rss: 80},
				64: {rates: []float64{1000, 1000, 1000}, lat: 60 * time.Millisecond, rss: 80},
			},
		}
	}
	check := func(name string, levels map[string]map[int]level, want map[string]bool) {
		t.Helper()
		summary, rows := runOf(levels)
		got := verdicts(goals(copyRates, summary, rows))
		if len(got) != len(want) {
			t.Errorf("%s: goals %v, want %v", name, got, want)
		}
		for g, met := range want {
			if m, ok := got[g]; !ok || m != met {
				t.Errorf("%s: %q met = %v (judged: %v), want %v", name, g, m, ok, met)
			}
		}
	}
	all := func(except string) map[string]bool {
		m := map[string]bool{vsCopyGoal: true, vsNaiveGoal: true, p99Goal: true, p50Goal: true, rssGoal: true}
		if except != "" {
			m[except] = false
		}
		return m
	}

	check("every goal met", good(), all(""))

	slow := good()
	slow[groupMode][64] = level{rates: []float64{3000, 3400, 3200}, lat: 30 * time.Millisecond, rss: 90}
	check("slower than 0.35 x COPY", slow, map[string]bool{vsCopyGoal: false, vsNaiveGoal: false, p99Goal: true, p50Goal: true, rssGoal: true})

	// 4.2 x naive as a ratio of medians, but under 4 in two rounds of three.
	split := good()
	split[groupMode][64] = level{rates: []float64{4200, 3900, 4500}, lat: 30 * time.Millisecond, rss: 90}
	split[naiveMode][64] = level{rates: []float64{1000, 1000, 1150}, lat: 60 * time.Millisecond, rss: 80}
	check("under 4 x naive within rounds", split, all(vsNaiveGoal))

	tail := good()
	tail[groupMode][64] = level{rates: []float64{4500, 4400, 4600}, lat: 51 * time.Millisecond, rss: 90}
	check("p99 over 50 ms", tail, all(p99Goal))

	lone := good()
	lone[groupMode][1] = level{rates: []float64{500, 500, 500}, lat: 2500 * time.Microsecond, rss: 90}
	check("a lone sender waits over 1 ms more", lone, all(p50Goal))

	big := good()
	big[naiveMode][1] = level{rates: []float64{500, 500, 500}, lat: 1400 * time.Microsecond, rss: 300}
	check("a server over 256 MiB", big, all(rssGoal))

	noLone := good()
	delete(noLone[groupMode], 1)
	delete(noLone[naiveMode], 1)
	check("no level of 1 sender", noLone, map[string]bool{vsCopyGoal: true, vsNaiveGoal: true, p99Goal: true, rssGoal: true})
}

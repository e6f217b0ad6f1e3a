package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// goal is one of the ingest goals (docs/benchmarks.md) as a run measured
// it.
type goal struct {
	name     string
	measured string
	met      bool
}

// The ingest goals: at 64 senders against COPY and the naive path in the
// same run, the tail of the acknowledgements, what group commit adds to a
// lone sender's wait, and the servers' memory. Stored events equal to 2xx
// answers is checked before (a run that fails it stops with an error).
const (
	goalSenders  = 64
	goalVsCopy   = 0.35
	goalVsNaive  = 4.0
	goalP99      = 50 * time.Millisecond
	goalAddedP50 = time.Millisecond
	goalPeakRSS  = 256.0 // MiB
)

// The two modes every run measures: the server as it ships, and the same
// binary committing each request on its own.
const (
	groupMode = "group commit"
	naiveMode = "naive"
)

// goals judges a run: summary is summarise's rows, rows every round's
// measurement, copyRates every round's COPY rate. A goal counts as met
// only if both the ratio of the medians and the median of the ratios
// within each round reach it, and p99 is judged over every round's
// acknowledgements together. A goal whose levels were not measured is
// left out.
func goals(copyRates []float64, summary, rows []row) []goal {
	find := func(mode string, senders int) (row, bool) {
		for _, r := range summary {
			if r.mode == mode && r.senders == senders {
				return r, true
			}
		}
		return row{}, false
	}
	var out []goal
	if gc, ok := find(groupMode, goalSenders); ok {
		vsCopy := gc.rate / median(copyRates)
		within := withinRounds(rows, groupMode, goalSenders, func(r row) float64 { return copyRates[r.round] })
		out = append(out, goal{
			name:     fmt.Sprintf("events/s at %d senders >= %.2f x COPY", goalSenders, goalVsCopy),
			measured: fmt.Sprintf("%.2f x (%.2f within rounds)", vsCopy, within),
			met:      vsCopy >= goalVsCopy && within >= goalVsCopy,
		})
		if naive, ok := find(naiveMode, goalSenders); ok && naive.rate > 0 {
			vsNaive := gc.rate / naive.rate
			within := withinRounds(rows, groupMode, goalSenders, naiveOf(rows))
			out = append(out, goal{
				name:     fmt.Sprintf("events/s at %d senders >= %.0f x naive", goalSenders, goalVsNaive),
				measured: fmt.Sprintf("%.2f x (%.2f within rounds)", vsNaive, within),
				met:      vsNaive >= goalVsNaive && within >= goalVsNaive,
			})
		}
		above := 0
		for _, r := range rows {
			if r.mode == groupMode && r.senders == goalSenders && len(r.lat) > 0 && percentile(r.lat, 99) > goalP99 {
				above++
			}
		}
		out = append(out, goal{
			name:     fmt.Sprintf("p99 at %d senders <= %v", goalSenders, goalP99),
			measured: fmt.Sprintf("%.1f ms (%s above on their own)", ms(gc.p99), plural(above, "round")),
			met:      gc.p99 <= goalP99,
		})
	}
	gc1, ok1 := find(groupMode, 1)
	naive1, okNaive1 := find(naiveMode, 1)
	if ok1 && okNaive1 {
		out = append(out, goal{
			name:     fmt.Sprintf("p50 at 1 sender <= naive + %v", goalAddedP50),
			measured: fmt.Sprintf("%.2f against %.2f ms", ms(gc1.p50), ms(naive1.p50)),
			met:      gc1.p50-naive1.p50 <= goalAddedP50,
		})
	}
	peak := 0.0
	for _, r := range summary {
		peak = max(peak, r.rssMiB)
	}
	if len(summary) > 0 {
		out = append(out, goal{
			name:     fmt.Sprintf("peak RSS of every server <= %.0f MiB", goalPeakRSS),
			measured: fmt.Sprintf("%.0f MiB", peak),
			met:      peak <= goalPeakRSS,
		})
	}
	return out
}

// withinRounds is the median of roundRatios, or 0 without any.
func withinRounds(rows []row, mode string, senders int, base func(row) float64) float64 {
	ratios := roundRatios(rows, mode, senders, base)
	if len(ratios) == 0 {
		return 0
	}
	return median(ratios)
}

// roundRatios is, for each round of mode at senders, its rate over
// base(that round), leaving out rounds without a base.
func roundRatios(rows []row, mode string, senders int, base func(row) float64) []float64 {
	var ratios []float64
	for _, r := range rows {
		if r.mode != mode || r.senders != senders {
			continue
		}
		if b := base(r); b > 0 {
			ratios = append(ratios, r.rate/b)
		}
	}
	return ratios
}

// naiveOf is the naive server's rate in r's round at r's level, or 0.
func naiveOf(rows []row) func(row) float64 {
	return func(r row) float64 {
		for _, n := range rows {
			if n.mode == naiveMode && n.senders == r.senders && n.round == r.round {
				return n.rate
			}
		}
		return 0
	}
}

func printGoals(gs []goal) {
	if len(gs) == 0 {
		return
	}
	fmt.Printf("\ngoals (docs/benchmarks.md; a ratio counts only if both forms reach it):\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, g := range gs {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", g.name, g.measured, verdictOf(g.met))
	}
	w.Flush()
}

func verdictOf(met bool) string {
	if met {
		return "met"
	}
	return "NOT MET"
}

// plural is n and what, in the plural unless n is 1.
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

package loadtest

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// kindOrder is the order receiver kinds are shown in.
var kindOrder = []string{"webhook", "websocket-ack", "websocket-oma", "longpoll"}

// kindsOf lists the kinds present in m, known ones first.
func kindsOf(m map[string]KindCounts) []string {
	var out []string
	for _, k := range kindOrder {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(kindOrder, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// writeKinds prints the figures by receiver kind (when there are several kinds or
// kills) and the kill table.
func (r *Report) writeKinds(w io.Writer) {
	kinds := kindsOf(r.ByKind)
	if len(kinds) < 2 && len(r.Kills) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w)
	fmt.Fprintf(tw, "receivers\texpected\tlost\tduplicated\t\n")
	for _, k := range kinds {
		c := r.ByKind[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t\n", k, c.Expected, c.Lost, c.Duplicates)
	}
	_ = tw.Flush()
	if len(r.Kills) > 0 {
		fmt.Fprintln(w)
		writeKills(w, r.Kills, kinds)
	}
}

// writeKills prints one row per kill: when, how long until /readyz answered again,
// and lost/duplicated per receiver kind (see supervisor.report for who is charged).
func writeKills(w io.Writer, kills []Kill, kinds []string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "kill\tat s\trestart ms\tdown ms\t")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s lost/dup\t", k)
	}
	fmt.Fprintln(tw)
	for _, k := range kills {
		if k.N == 0 {
			fmt.Fprint(tw, "after last\t\t\t\t")
		} else {
			fmt.Fprintf(tw, "%d\t%.1f\t%.0f\t%.0f\t", k.N, k.AtSeconds, k.RestartMs, k.DownMs)
		}
		for _, kind := range kinds {
			c := k.ByKind[kind]
			fmt.Fprintf(tw, "%d/%d\t", c.Lost, c.Duplicates)
		}
		if k.Failed != "" {
			fmt.Fprintf(tw, "%s", k.Failed)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
}

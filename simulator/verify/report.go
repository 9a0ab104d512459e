package verify

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the human report: verdict, totals, latency, the worst
// devices (at most maxDevices; 0 for none, negative for all) and the
// alert score.
func (r *Report) WriteText(w io.Writer, maxDevices int) error {
	var b strings.Builder
	verdict := "OK: nothing lost, duplicated or out of order"
	if !r.OK {
		var what []string
		t := r.Totals
		if t.Lost > 0 {
			what = append(what, fmt.Sprintf("%d lost", t.Lost))
		}
		if t.Duplicated > 0 {
			what = append(what, fmt.Sprintf("%d duplicated", t.Duplicated))
		}
		if t.OutOfOrder > 0 {
			what = append(what, fmt.Sprintf("%d out of order", t.OutOfOrder))
		}
		verdict = "FAIL: " + strings.Join(what, ", ")
	}
	fmt.Fprintf(&b, "verify %s: %s\n", r.Read.Stream, verdict)
	if !r.Complete {
		fmt.Fprintf(&b, "  WARNING: the deadline came before the stream was read to the end (behind %d ms): losses may be readings not read yet\n", r.Read.BehindMs)
	}
	fmt.Fprintf(&b, "  read        %d records (%d bytes) from %d shards (%d closed, read to their end) in %.1fs, %d GetRecords calls, %d throttled\n",
		r.Read.Records, r.Read.Bytes, r.Read.Shards, r.Read.Finished, r.Read.Seconds, r.Read.Calls, r.Read.Throttle)
	if r.DecodeErrors > 0 || r.KeyMismatches > 0 {
		fmt.Fprintf(&b, "  records     %d do not decode, %d have a partition key other than their device\n", r.DecodeErrors, r.KeyMismatches)
	}
	t := r.Totals
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  readings\texpected\treceived\tunique\tlost\tduplicated\tunexpected\tout of order\t")
	fmt.Fprintf(tw, "  total\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Expected, t.Received, t.Unique, t.Lost, t.Duplicated, t.Unexpected, t.OutOfOrder)
	tw.Flush()
	known, heard, foreign := r.TruthDevices, 0, 0
	for _, d := range r.Devices {
		if !d.InTruth {
			foreign++
		} else if d.Unique > 0 {
			heard++
		}
	}
	fmt.Fprintf(&b, "  devices     %d in the truth, %d heard", known, heard)
	if foreign > 0 {
		fmt.Fprintf(&b, ", %d not in the truth (all their readings unexpected)", foreign)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  health      %d gateway health readings (agent.*) from %d gateway(s), not compared\n", r.Health, len(r.HealthGateways))
	l := r.Latency
	fmt.Fprintf(&b, "  latency     device time -> %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d readings",
		l.Source, l.P50Ms, l.P99Ms, l.MaxMs, l.Count)
	if l.Negative > 0 {
		fmt.Fprintf(&b, " (%d stamped before their device time)", l.Negative)
	}
	b.WriteString("\n")

	bad := slices.IndexFunc(r.Devices, func(d DeviceReport) bool { return !d.Bad() && d.Unexpected == 0 })
	if bad < 0 {
		bad = len(r.Devices)
	}
	show := bad
	if maxDevices >= 0 {
		show = min(show, maxDevices)
	}
	if show > 0 {
		fmt.Fprintf(&b, "  devices with problems: %d", bad)
		if show < bad {
			fmt.Fprintf(&b, " (the worst %d below; -json lists all)", show)
		}
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    device\texpected\tunique\tlost\tdup\tunexpected\torder\tlargest gap")
		for _, d := range r.Devices[:show] {
			gap := ""
			if d.LargestGap != nil {
				gap = fmt.Sprintf("%.1fs from %s", d.LargestGap.Seconds, d.LargestGap.From.Format(time.RFC3339Nano))
			}
			name := d.Device
			if !d.InTruth {
				name += " (not in truth)"
			}
			fmt.Fprintf(tw, "    %s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name, d.Expected, d.Unique, d.Lost, d.Duplicated, d.Unexpected, d.OutOfOrder, gap)
		}
		tw.Flush()
	}
	if a := r.Alerts; a != nil {
		fmt.Fprintf(&b, "alerts %s: %d alerts (%d on gateway health, %d records not alerts), tolerance %s\n",
			a.Stream, a.Alerts, a.HealthAlerts, a.BadRecords, time.Duration(a.ToleranceSeconds*float64(time.Second)))
		fmt.Fprintf(&b, "  precision   %s (%d of %d alerts match an injected anomaly)\n", pct(a.Precision), a.Matched, a.Alerts)
		fmt.Fprintf(&b, "  recall      %s (%d of %d anomalies detected)\n", pct(a.Recall), a.Detected, a.Anomalies)
		kinds := make([]string, 0, len(a.ByKind))
		for k := range a.ByKind {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		for _, k := range kinds {
			s := a.ByKind[k]
			fmt.Fprintf(&b, "    %-12s %s (%d of %d)\n", k, pct(s.Recall), s.Detected, s.Anomalies)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ProgressLine formats ReadStats as one progress line.
func ProgressLine(st ReadStats) string {
	return fmt.Sprintf("verify: %s: %d records, %d shards (%d finished), behind %d ms, %d throttled",
		st.Stream, st.Records, st.Shards, st.Finished, st.BehindMs, st.Throttle)
}

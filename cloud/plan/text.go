package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints a plan as tables for people.
func WriteText(w io.Writer, pl *Plan) error {
	t, c := &pl.Traffic, &pl.Capacity
	var b strings.Builder
	fmt.Fprintf(&b, "Traffic (%s)\n", t.Source)
	fmt.Fprintf(&b, "  %s devices, %s readings/s, %s records/s, %s/s\n", num(float64(t.Devices)), num(t.ReadingsPerSec), num(t.RecordsPerSec), human(t.BytesPerSec))
	fmt.Fprintf(&b, "  a record: %.3g readings, %.0f bytes (data + partition key); %.1f bytes per reading\n\n", t.ReadingsPerRecord, t.BytesPerRecord, t.BytesPerReading)

	fmt.Fprintf(&b, "Kinesis shards: %d (bound by %s; headroom %.0f%%)\n", c.Shards, c.Binding, c.Headroom*100)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  constraint\tload\tper shard\tshards")
	for _, x := range c.Constraints {
		shards := fmt.Sprint(x.Shards)
		if x.Shards == 0 {
			shards = "unmet"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", x.Name, unitValue(x.Load, x.Unit), unitValue(x.PerShard, x.Unit), shards)
	}
	tw.Flush()
	for _, x := range c.Constraints {
		if x.Note != "" {
			fmt.Fprintf(&b, "  %s: %s\n", x.Name, x.Note)
		}
	}
	fmt.Fprintf(&b, "  PUT payload units: %s per month (25 KB units, each record rounded up)\n", num(c.PutUnitsPerMonth))
	fmt.Fprintf(&b, "  ingest %s GB per month; %s GB retained (%gh)\n\n", num(c.IngestGBPerMonth), num(c.RetainedGB), c.RetentionHours)

	fmt.Fprintf(&b, "Monthly cost, USD (%g h month; prices %s, %s, as of %s)\n", pl.Prices.HoursPerMonth, pl.Prices.File, pl.Prices.Region, pl.Prices.AsOf)
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  engine\tsizing\tmonthly")
	for _, e := range pl.Estimates {
		fmt.Fprintf(tw, "  %s\t%s\t$%s\n", e.Engine, e.Sizing, money(e.MonthlyUSD))
	}
	tw.Flush()
	for _, e := range pl.Estimates {
		fmt.Fprintf(&b, "\n%s\n", e.Engine)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, l := range e.Lines {
			fmt.Fprintf(tw, "  %s\t%s %s\t× $%g\t$%s\n", l.Item, num(l.Quantity), l.Unit, l.UnitUSD, money(l.USD))
		}
		tw.Flush()
		for _, n := range e.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	b.WriteString("\nPrices change: check them (the price file names the page of every number) and pass -prices FILE to use your own.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func money(usd float64) string { return num2(usd, 2) }

// num formats a quantity: thousands separated and no decimals from 1,000,
// three significant digits below.
func num(v float64) string {
	if v >= 1000 || v <= -1000 {
		return num2(v, 0)
	}
	return fmt.Sprintf("%.3g", v)
}

// num2 formats v with dec decimals and thousands separators.
func num2(v float64, dec int) string {
	s := fmt.Sprintf("%.*f", dec, v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func unitValue(v float64, unit string) string {
	if unit == "bytes/s" {
		return human(v) + "/s"
	}
	return num(v) + " " + unit
}

// human formats a byte count with binary units.
func human(n float64) string {
	switch {
	case n >= GB:
		return fmt.Sprintf("%.3g GiB", n/GB)
	case n >= MiB:
		return fmt.Sprintf("%.3g MiB", n/MiB)
	case n >= 1<<10:
		return fmt.Sprintf("%.3g KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

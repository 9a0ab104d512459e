// Command nabrun is the NAB bench of the anomaly detector: it runs
// anomaly.Score, with the default Config, over every <category>/<file>.csv
// under -data (the Numenta Anomaly Benchmark's layout) and writes the
// results in NAB's layout, <out>/<category>/<detector>_<file>.csv, ready
// for tools/nabscore in the shared folder:
//
//	go build -o /tmp/nabrun ./cloud/anomaly/cmd/nabrun
//	/tmp/nabrun -data ../shared/data/nab/data -out /tmp/nabres
//	go -C ../shared/tools/nabscore build -o /tmp/nabscore .
//	cd ../shared && /tmp/nabscore -data data/nab/data -labels data/nab/labels/combined_windows.json \
//	    -profiles data/nab/config/profiles.json -results /tmp/nabres -detector tributary
//
// Files are scored in parallel (one detector per file, as in the live
// consumer). It never reads the labels. The package documentation of
// cloud/anomaly records the current figure.
//
// With -cv it cross-validates the detector's constants instead, leaving
// one NAB category out at a time: it runs every candidate of a small grid
// of scale-free constants (see grid) over every file, and for each
// category chooses the candidate with the best standard score on the
// other categories (scored by nabscore on them alone: the labels reach
// the choice only through the scorer, never the held-out category's),
// then scores it on the held-out category. It prints, per fold, the
// choice and its scores on the held-out category (undefined for a
// category without anomaly windows), their mean, the out-of-fold results
// of every category scored together (the cross-validated score, to set
// beside the in-sample score of the defaults, which it prints too), and
// the candidate most folds chose, which the defaults should be:
//
//	go -C ../shared/tools/nabscore build -o /tmp/nabscore .
//	go run ./cloud/anomaly/cmd/nabrun -cv -data ../shared/data/nab/data -nabscore /tmp/nabscore
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func main() {
	data := flag.String("data", "", "NAB data folder: <category>/<file>.csv")
	out := flag.String("out", "", "results folder to write")
	name := flag.String("detector", "tributary", "detector name: the prefix of the results files")
	cv := flag.Bool("cv", false, "cross-validate the constants, leaving one category out (needs -nabscore)")
	var o cvOptions
	flag.StringVar(&o.scorer, "nabscore", "", "-cv: the nabscore binary (built from the shared folder's tools/nabscore)")
	flag.StringVar(&o.labels, "labels", "", "-cv: combined_windows.json (default: DATA/../labels/combined_windows.json)")
	flag.StringVar(&o.profiles, "profiles", "", "-cv: profiles.json (default: DATA/../config/profiles.json)")
	flag.BoolVar(&o.json, "json", false, "-cv: print the report as JSON")
	flag.Parse()
	if *data == "" || (*out == "") == !*cv || (*cv && o.scorer == "") || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: nabrun -data DIR -out DIR [-detector NAME]\n       nabrun -cv -data DIR -nabscore BIN [-labels FILE] [-profiles FILE] [-json]")
		os.Exit(2)
	}
	var err error
	if *cv {
		o.data = *data
		err = crossValidate(o, os.Stdout)
	} else {
		err = run(*data, *out, *name, anomaly.Config{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nabrun:", err)
		os.Exit(1)
	}
}

// run scores every file under data with cfg into out, in parallel.
func run(data, out, name string, cfg anomaly.Config) error {
	files, err := filepath.Glob(filepath.Join(data, "*", "*.csv"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no <category>/<file>.csv under %s", data)
	}
	sort.Strings(files)
	start := time.Now()
	jobs := make([]func() error, len(files))
	for i, f := range files {
		jobs[i] = func() error { return scoreFile(f, out, name, cfg) }
	}
	if err := parallel(jobs); err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(os.Stderr, "nabrun: %d files in %s\n", len(files), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func scoreFile(in, out, name string, cfg anomaly.Config) (err error) {
	category := filepath.Base(filepath.Dir(in))
	dir := filepath.Join(out, category)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r, err := os.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	path := filepath.Join(dir, name+"_"+filepath.Base(in))
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriter(w)
	if err := anomaly.Score(r, bw, cfg); err != nil {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(in, data0(in)), err)
	}
	return bw.Flush()
}

func data0(in string) string { return filepath.Dir(filepath.Dir(in)) + string(filepath.Separator) }

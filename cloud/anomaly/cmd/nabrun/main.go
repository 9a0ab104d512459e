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
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func main() {
	data := flag.String("data", "", "NAB data folder: <category>/<file>.csv")
	out := flag.String("out", "", "results folder to write")
	name := flag.String("detector", "tributary", "detector name: the prefix of the results files")
	flag.Parse()
	if *data == "" || *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: nabrun -data DIR -out DIR [-detector NAME]")
		os.Exit(2)
	}
	if err := run(*data, *out, *name); err != nil {
		fmt.Fprintln(os.Stderr, "nabrun:", err)
		os.Exit(1)
	}
}

func run(data, out, name string) error {
	files, err := filepath.Glob(filepath.Join(data, "*", "*.csv"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no <category>/<file>.csv under %s", data)
	}
	sort.Strings(files)
	start := time.Now()
	jobs := make(chan string)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				errs <- scoreFile(f, out, name)
			}
		}()
	}
	for _, f := range files {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "nabrun: %d files in %s\n", len(files), time.Since(start).Round(time.Millisecond))
	return nil
}

func scoreFile(in, out, name string) (err error) {
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
	if err := anomaly.Score(r, bw, anomaly.Config{}); err != nil {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(in, data0(in)), err)
	}
	return bw.Flush()
}

func data0(in string) string { return filepath.Dir(filepath.Dir(in)) + string(filepath.Separator) }

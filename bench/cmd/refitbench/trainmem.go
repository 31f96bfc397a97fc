package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/refit-ml/refit/bench"
	"github.com/refit-ml/refit/client"
	"github.com/refit-ml/refit/events"
	"github.com/refit-ml/refit/internal/blob/local"
	"github.com/refit-ml/refit/internal/dataset"
	"github.com/refit-ml/refit/internal/registry"
	"github.com/refit-ml/refit/internal/store/bolt"
	"github.com/refit-ml/refit/internal/store/memory"
	"github.com/refit-ml/refit/schemas"
	"github.com/refit-ml/refit/workers"
	"github.com/refit-ml/refit/workers/train"
)

// trainStep is one train step measured in a process of its own.
type trainStep struct {
	Rows       int     `json:"rows"`
	From       string  `json:"from"` // statistics (the blob's computed from its rows first) or rows (FitFromRows)
	Seconds    float64 `json:"seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`  // the process's VmHWM at the end
	StartRSSMB float64 `json:"start_rss_mb"` // VmRSS just before the step
	PeakHeapMB float64 `json:"peak_heap_mb"` // the largest live-and-unswept heap sampled during the step
	FittedFrom string  `json:"fitted_from"`  // what the runs record
	RunsFitted int     `json:"runs"`
}

// trainMem measures the peak memory of the train step on a version of
// each size: a `refit run` ingests and versions one generated file, then
// `refitbench trainstep` trains that version again in a process of its
// own, from its rows, so the process's peak RSS is the train step's.
func (s *suiteState) trainMem(ctx context.Context) error {
	sizes := []int{100_000, 1_000_000}
	if s.cfg.quick {
		sizes = []int{10_000, 100_000}
	}
	var steps []trainStep
	for _, n := range sizes {
		name := fmt.Sprintf("trainmem-%d", n)
		p, err := s.refitProcOn(ctx, name, batchCPUs)
		if err != nil {
			return err
		}
		csv, err := bench.CSV(int64(n), n)
		if err == nil {
			_, err = client.New(p.url).Upload(ctx, "housing", "big.csv", bytes.NewReader(csv), int64(len(csv)))
		}
		if err == nil {
			_, err = bench.WaitDecided(ctx, client.New(p.url), 1, 2, 30*time.Minute)
		}
		p.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		dir, _ := filepath.Abs(filepath.Join(s.cfg.out, name+"-data"))
		for _, from := range []string{"statistics", "rows"} {
			cmd := pinned(serverCPU, s.self, "trainstep", "-data", dir, "-from", from)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("trainstep %d from %s: %w", n, from, err)
			}
			var st trainStep
			if err := json.Unmarshal(out, &st); err != nil {
				return fmt.Errorf("trainstep output %q: %w", out, err)
			}
			steps = append(steps, st)
		}
		_ = os.RemoveAll(dir)
	}
	s.report.Raw["train_memory"] = steps
	r := s.report
	r.printf("## Peak memory of the train step\n\nA `refit run` ingests and versions one generated file; then `refitbench trainstep` (pinned to CPU %s) trains both housing specs on that version again in a process of its own, with a fresh registry: `statistics` deletes every statistics file first, so the step computes the blob's statistics from its rows, then fits and scores from them (the first training of a version); `rows` is the full refit (`train.Config.FitFromRows`: every spec fitted and scored from the rows). Peak RSS is the process's VmHWM; peak heap the largest heap sampled every millisecond (runtime/metrics).\n\n", serverCPU)
	r.printf("| rows | from | s | RSS before MiB | peak RSS MiB | peak heap MiB | runs |\n|---|---|---|---|---|---|---|\n")
	for _, st := range steps {
		r.printf("| %d | %s | %.2f | %.1f | %.1f | %.1f | %d (%s) |\n", st.Rows, st.From, st.Seconds, st.StartRSSMB, st.PeakRSSMB, st.PeakHeapMB, st.RunsFitted, st.FittedFrom)
	}
	r.printf("\n")
	return nil
}

// runTrainStep is `refitbench trainstep`: train version 1 of the housing
// data in dir (a `refit run` data folder) with a fresh in-memory registry,
// and print a trainStep as JSON.
func runTrainStep(ctx context.Context, dir, from string) error {
	if from != "statistics" && from != "rows" {
		return fmt.Errorf("-from %q: want statistics or rows", from)
	}
	catalog, err := dataset.LoadCatalog(schemas.Files, "datasets", "")
	if err != nil {
		return err
	}
	root := filepath.Join(dir, "bucket")
	bucket, err := local.New(root, "local")
	if err != nil {
		return err
	}
	docs, err := bolt.Open(filepath.Join(dir, "refit.db"))
	if err != nil {
		return err
	}
	versions, err := registry.New(docs).Versions(ctx, "housing")
	docs.Close()
	if err != nil {
		return err
	}
	if len(versions) != 1 {
		return fmt.Errorf("%s: %d versions, want 1", dir, len(versions))
	}
	v := versions[0]
	// Statistics are derived data: without them the step computes them.
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(path, ".stats") {
			err = os.Remove(path)
		}
		return err
	})
	if err != nil {
		return err
	}
	reg := registry.New(memory.New())
	if err := reg.AddVersion(ctx, v); err != nil {
		return err
	}
	w, err := train.New(train.Config{Deps: workers.Deps{Datasets: catalog, Bucket: bucket, Registry: reg, Publisher: nopPublisher{},
		Logger: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()}, FitFromRows: from == "rows"})
	if err != nil {
		return err
	}
	st := trainStep{Rows: v.Rows, From: from, StartRSSMB: procStatusMB(os.Getpid(), "VmRSS:")}
	stop := make(chan struct{})
	peak := make(chan float64)
	go func() { peak <- samplePeakHeap(stop) }()
	t0 := time.Now()
	err = w.HandleVersioned(ctx, &events.DatasetVersioned{Meta: events.Meta{Dataset: "housing"}, Version: v.Number})
	st.Seconds = time.Since(t0).Seconds()
	close(stop)
	st.PeakHeapMB = <-peak
	st.PeakRSSMB = procStatusMB(os.Getpid(), "VmHWM:")
	if err != nil {
		return err
	}
	runs, err := reg.Runs(ctx, "housing")
	if err != nil {
		return err
	}
	st.RunsFitted = len(runs)
	if len(runs) == 0 {
		return errors.New("the train step recorded no run")
	}
	st.FittedFrom = runs[0].FittedFrom
	return json.NewEncoder(os.Stdout).Encode(st)
}

// samplePeakHeap samples the heap (objects live or not yet swept) every
// millisecond until stop, and returns its largest value in MiB.
func samplePeakHeap(stop <-chan struct{}) float64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var top uint64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		top = max(top, sample[0].Value.Uint64())
		select {
		case <-stop:
			return float64(top) / (1 << 20)
		case <-tick.C:
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, events.Event) error { return nil }

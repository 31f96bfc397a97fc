// Command refitbench runs Refit's system benchmarks (make bench):
//
//	refitbench suite [-quick] [-out .bench]   everything, results in -out
//	refitbench load -url U -batch N ...       one load run, a JSON result on stdout
//	refitbench bare -addr A                   baseline A: the bare net/http handler
//	refitbench trainstep -data D -from F      one train step in its own process (trainmem)
//
// The suite starts each server and each load generator as its own process,
// pinned to different CPUs with taskset when there are two or more.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/refit-ml/refit/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "refitbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: refitbench suite|load|bare [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "load":
		url := fs.String("url", "", "predict URL")
		batch := fs.Int("batch", 1, "instances per request")
		conns := fs.Int("conns", 16, "connections")
		rate := fs.Float64("rate", 0, "open-loop requests/s (0: closed loop)")
		dur := fs.Duration("duration", 5*time.Second, "measured time")
		warm := fs.Duration("warmup", 0, "closed-loop warm-up before measuring")
		seed := fs.Int64("seed", 1, "generator seed for the request bodies")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		bodies, err := bench.Bodies(*seed, 256, *batch)
		if err != nil {
			return err
		}
		if *warm > 0 {
			bench.Load{URL: *url, Bodies: bodies, Conns: *conns, Duration: *warm}.Run(ctx)
		}
		res := bench.Load{URL: *url, Bodies: bodies, Conns: *conns, Rate: *rate, Duration: *dur}.Run(ctx)
		return json.NewEncoder(os.Stdout).Encode(res)
	case "bare":
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: bench.Bare(), ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		fmt.Printf("listening on http://%s\n", ln.Addr())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	case "trainstep":
		data := fs.String("data", "", "a refit run data folder holding one version of housing")
		from := fs.String("from", "statistics", "statistics or rows")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return runTrainStep(ctx, *data, *from)
	case "suite":
		var cfg suiteConfig
		fs.StringVar(&cfg.out, "out", ".bench", "results folder")
		fs.BoolVar(&cfg.quick, "quick", false, "short runs (a smoke test of the suite, not figures)")
		fs.StringVar(&cfg.only, "only", "", "comma list of workloads: serving,swap,freshness,throughput,trainmem (default all)")
		fs.StringVar(&cfg.python, "python", "/usr/bin/python3", "Python with flask, gunicorn, sklearn, pandas (Debian's)")
		fs.StringVar(&cfg.rev, "rev", "", "build refit from this git revision (default: the working tree)")
		fs.StringVar(&cfg.sizes, "sizes", "10000,100000,1000000", "throughput: rows per generated file, comma separated")
		fs.StringVar(&cfg.freshSizes, "fresh-sizes", "10000,100000,1000000", "freshness curve: rows already versioned, comma separated")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return suite(ctx, cfg)
	default:
		return fmt.Errorf("unknown command %q: want suite, load, bare or trainstep", args[0])
	}
}

package main

import (
	"errors"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecachedb/ecache/bench"
	"github.com/ecachedb/ecache/client"
)

func newBenchCmd() *cobra.Command {
	var (
		o                      bench.Options
		ratio, dist, valueSize string
		jsonPath, htmlPath     string
		seed                   uint64
		lag                    bench.LagOptions
		lagMode                bool
		lagW                   string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test an ecache node (native protocol) or any RESP server",
		Long: `bench drives a GET/SET workload against --target and reports throughput,
latency percentiles (HdrHistogram, µs), errors and the hit ratio.

Targets: ecache://HOST:PORT (native protocol via the Go SDK; ?ns=NAMESPACE,
ecache://:PASSWORD@HOST:PORT) or redis://HOST:PORT (RESP via go-redis: Redis,
ecache's RESP listener or any Redis-compatible server).

--pipeline is the requests in flight per connection: the native driver runs
conns*pipeline goroutines over conns connections; the RESP driver sends
pipelines of that many commands on each of conns connections.
--rate makes the run open loop: requests are scheduled at fixed intervals and
latency is measured from the scheduled time (no coordinated omission).
--compare measures a second target in slices alternating with --target's and
prints the ratios (first/second).

--replication-lag measures, instead of a load, how long a write takes to
reach every replica: each sample writes a fresh key via --target, then polls
each of its replicas with local reads (no forwarding) until all show it.
The replicas come from --target's cluster view unless --replicas-urls lists
them. Reports the lag (write start to last replica) and write latency
distributions.`,
		Example: `  ecache bench --target ecache://127.0.0.1:7070 --ratio 9:1 --keys 1000000 --duration 30s --preload
  ecache bench --target ecache://127.0.0.1:7070 --compare redis://127.0.0.1:6379 --pipeline 16 --duration 20s --html out.html
  ecache bench --target ecache://127.0.0.1:7070 --replication-lag --samples 2000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lagMode {
				return runLag(cmd, lag, o.Target, valueSize, lagW, seed, jsonPath)
			}
			w := bench.DefaultWorkload()
			var err error
			if w.Gets, w.Sets, err = bench.ParseRatio(ratio); err != nil {
				return err
			}
			if w.Zipf, err = bench.ParseDist(dist); err != nil {
				return err
			}
			if w.ValueMin, w.ValueMax, err = bench.ParseValueSize(valueSize); err != nil {
				return err
			}
			fs := cmd.Flags()
			w.Keys, _ = fs.GetInt("keys")
			w.Seed = seed
			o.Workload = w
			if o.Duration == 0 && o.Ops == 0 {
				o.Duration = 10 * time.Second
			}
			out := cmd.OutOrStdout()
			if f, ok := out.(*os.File); ok && isTerminal(f) {
				o.Progress = f
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			rep, err := bench.Run(ctx, o)
			if o.Progress != nil {
				o.Progress.Write([]byte("\r\033[K"))
			}
			if rep == nil {
				return err
			}
			if ctx.Err() != nil {
				err = nil // interrupted: report what was measured
			}
			if werr := rep.WriteText(out); werr != nil {
				return werr
			}
			if jsonPath != "" {
				err = errors.Join(err, rep.SaveJSON(jsonPath))
			}
			if htmlPath != "" {
				err = errors.Join(err, rep.SaveHTML(htmlPath))
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Target, "target", "ecache://127.0.0.1:7070", "target URL: ecache://HOST:PORT or redis://HOST:PORT")
	fs.StringVar(&o.Compare, "compare", "", "second target URL, measured interleaved with --target; prints the ratios")
	fs.StringVar(&ratio, "ratio", "9:1", "GET:SET ratio")
	fs.Int("keys", 1_000_000, "keyspace size (keys key:0 … key:N-1)")
	fs.StringVar(&dist, "dist", "uniform", "key distribution: uniform or zipf:S (e.g. zipf:0.99)")
	fs.StringVar(&valueSize, "value-size", "100", "value size in bytes: N or MIN-MAX")
	fs.IntVar(&o.Conns, "conns", 50, "connections per target")
	fs.IntVar(&o.Pipeline, "pipeline", 1, "requests in flight per connection")
	fs.DurationVar(&o.Duration, "duration", 0, "measured time per target (default 10s unless --ops)")
	fs.Int64Var(&o.Ops, "ops", 0, "measured operations per target")
	fs.Float64Var(&o.Rate, "rate", 0, "open-loop request rate in ops/s (0 = closed loop)")
	fs.DurationVar(&o.Warmup, "warmup", 0, "unmeasured warm-up time per target")
	fs.BoolVar(&o.Preload, "preload", false, "write every key once before measuring")
	fs.IntVar(&o.Slices, "slices", 4, "alternating slices per target with --compare")
	fs.StringVar(&jsonPath, "json", "", "write the report as JSON to FILE")
	fs.StringVar(&htmlPath, "html", "", "write an HTML report with latency charts to FILE")
	fs.Uint64Var(&seed, "seed", 1, "workload random seed")
	fs.BoolVar(&lagMode, "replication-lag", false, "measure replication lag instead: write via --target, poll every replica with local reads until visible")
	fs.StringSliceVar(&lag.Replicas, "replicas-urls", nil, "with --replication-lag: replicas' client addresses HOST:PORT to poll (default: each key's replicas, from --target's cluster view)")
	fs.IntVar(&lag.Samples, "samples", 1000, "with --replication-lag: writes measured")
	fs.DurationVar(&lag.Timeout, "lag-timeout", 5*time.Second, "with --replication-lag: longest wait for one write's replicas")
	fs.DurationVar(&lag.PollInterval, "poll-interval", 0, "with --replication-lag: pause between local reads of a replica (0 = back to back)")
	fs.StringVar(&lagW, "w", "", "with --replication-lag: W of the writes: N, quorum or all (default: the namespace's)")
	return cmd
}

// runLag is `bench --replication-lag`.
func runLag(cmd *cobra.Command, o bench.LagOptions, target, valueSize, w string, seed uint64, jsonPath string) error {
	lo, hi, err := bench.ParseValueSize(valueSize)
	if err != nil {
		return err
	}
	o.Target, o.ValueSize, o.Seed = target, (lo+hi)/2, seed
	for i, r := range o.Replicas {
		o.Replicas[i] = strings.TrimPrefix(r, "ecache://")
	}
	wopt, err := levelOption("--w", w, client.WithW, client.WithWQuorum(), client.WithWAll())
	if err != nil {
		return err
	}
	if wopt != nil {
		o.Options = append(o.Options, wopt)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	rep, err := bench.RunLag(ctx, o)
	if rep == nil {
		return err
	}
	if ctx.Err() != nil {
		err = nil // interrupted: report what was measured
	}
	if werr := rep.WriteText(cmd.OutOrStdout()); werr != nil {
		return werr
	}
	if jsonPath != "" {
		err = errors.Join(err, rep.SaveJSON(jsonPath))
	}
	return err
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminServer serves a node's operational HTTP endpoints: /healthz
// (process alive), /readyz (serving and storage writable), /metrics
// (Prometheus), /v1/node, /v1/cluster and /v1/antientropy (404 for a
// single node) and /debug/pprof. It uses its own ServeMux, never
// http.DefaultServeMux.
type AdminServer struct {
	srv       *http.Server
	ln        net.Listener
	done      chan error
	closeOnce sync.Once
	closeErr  error
}

// StartAdmin listens on addr and serves n's admin endpoints until Close.
func StartAdmin(n *Node, addr string) (*AdminServer, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := n.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /v1/node", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"node_id":     n.ID().String(),
			"listen":      n.Addr(),
			"resp_listen": n.RESPAddr(),
			"version":     n.cfg.Version,
			"persistence": n.store.Config().Persistence.String(),
			"namespaces":  n.Namespaces(),
		})
	})
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		info, ok := n.ClusterInfo()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "not in cluster mode (start with --cluster, --join or --cluster-key)"})
			return
		}
		_ = json.NewEncoder(w).Encode(info)
	})
	mux.HandleFunc("GET /v1/antientropy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		info, ok := n.AntiEntropyInfo()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "not in cluster mode: anti-entropy runs between replicas"})
			return
		}
		_ = json.NewEncoder(w).Encode(info)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.Registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: admin listen on %s: %w", addr, err)
	}
	a := &AdminServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { a.done <- a.srv.Serve(ln) }()
	return a, nil
}

// Addr is the address the admin server listens on.
func (a *AdminServer) Addr() string { return a.ln.Addr().String() }

// Close stops the admin server and waits for it, within ctx. It is
// idempotent.
func (a *AdminServer) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		a.closeErr = a.srv.Shutdown(ctx)
		if err := <-a.done; err != nil && !errors.Is(err, http.ErrServerClosed) && a.closeErr == nil {
			a.closeErr = err
		}
	})
	return a.closeErr
}

// Ready reports why the node cannot serve writes, or nil.
func (n *Node) Ready() error {
	if n.closed.Load() {
		return ErrClosed
	}
	if n.store.Stats().Failed {
		return errors.New("node: storage failed; writes are refused")
	}
	return nil
}

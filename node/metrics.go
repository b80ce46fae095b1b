package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ecachedb/ecache/netproto"
)

// Wire opcodes and codes are small append-only enums; metrics for them are
// resolved once so the request path does no label lookups.
const (
	maxOpcode = 32
	maxCode   = 32
)

// metrics are one node's Prometheus metrics, in a registry of its own (no
// global state: several nodes can live in one process, as tests do).
type metrics struct {
	reg      *prometheus.Registry
	requests [maxOpcode][maxCode]prometheus.Counter
	latency  [maxOpcode]prometheus.Observer
}

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecache_requests_total",
		Help: "Protocol requests served, by opcode and result code.",
	}, []string{"op", "code"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ecache_request_duration_seconds",
		Help:    "Time to serve a protocol request inside the node, by opcode.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1µs .. ~4s
	}, []string{"op"})
	m.reg.MustRegister(reqs, lat, &storeCollector{n: n})
	for op := netproto.Opcode(1); op < maxOpcode; op++ {
		if !op.Valid() {
			continue
		}
		m.latency[op] = lat.WithLabelValues(op.String())
		for c := netproto.Code(0); c < maxCode; c++ {
			if c.String() == "" || c > netproto.CodeOverflow {
				continue
			}
			m.requests[op][c] = reqs.WithLabelValues(op.String(), c.String())
		}
	}
	return m
}

// observe counts one request and its latency.
func (m *metrics) observe(op netproto.Opcode, code netproto.Code, start time.Time) {
	if int(op) >= maxOpcode || int(code) >= maxCode {
		return
	}
	if c := m.requests[op][code]; c != nil {
		c.Inc()
	}
	if o := m.latency[op]; o != nil {
		o.Observe(time.Since(start).Seconds())
	}
}

// Registry returns the node's Prometheus registry (served on /metrics).
func (n *Node) Registry() *prometheus.Registry { return n.metrics.reg }

// storeCollector exports storage, Pebble and server state at scrape time.
type storeCollector struct{ n *Node }

var (
	descMemBytes     = prometheus.NewDesc("ecache_memory_bytes", "Bytes held by the memory tier.", nil, nil)
	descMemLimit     = prometheus.NewDesc("ecache_memory_limit_bytes", "Memory tier capacity.", nil, nil)
	descMemEntries   = prometheus.NewDesc("ecache_memory_entries", "Objects held by the memory tier.", nil, nil)
	descMemHits      = prometheus.NewDesc("ecache_memory_hits_total", "Memory tier hits.", nil, nil)
	descMemMisses    = prometheus.NewDesc("ecache_memory_misses_total", "Memory tier misses.", nil, nil)
	descMemEvictions = prometheus.NewDesc("ecache_memory_evictions_total", "Memory tier evictions.", nil, nil)
	descPending      = prometheus.NewDesc("ecache_writebehind_pending_bytes", "Bytes queued for the next write-behind flush.", nil, nil)
	descFlushes      = prometheus.NewDesc("ecache_writebehind_flushes_total", "Write-behind flushes completed.", nil, nil)
	descExpired      = prometheus.NewDesc("ecache_expired_removed_total", "Expired objects removed by the sweep.", nil, nil)
	descFailed       = prometheus.NewDesc("ecache_storage_failed", "1 when a disk error stopped writes.", nil, nil)
	descDiskUsage    = prometheus.NewDesc("ecache_pebble_disk_usage_bytes", "Bytes Pebble uses on disk.", nil, nil)
	descCompactions  = prometheus.NewDesc("ecache_pebble_compactions_total", "Pebble compactions.", nil, nil)
	descFlushCount   = prometheus.NewDesc("ecache_pebble_flushes_total", "Pebble memtable flushes.", nil, nil)
	descReadAmp      = prometheus.NewDesc("ecache_pebble_read_amplification", "Pebble read amplification.", nil, nil)
	descConns        = prometheus.NewDesc("ecache_connections", "Open client connections.", nil, nil)
	descAccepted     = prometheus.NewDesc("ecache_connections_accepted_total", "Client connections accepted.", nil, nil)
	descRejected     = prometheus.NewDesc("ecache_connections_rejected_total", "Client connections refused (limit).", nil, nil)

	descForwarded      = prometheus.NewDesc("ecache_cluster_forwarded_total", "Requests forwarded to a replica.", nil, nil)
	descReplicated     = prometheus.NewDesc("ecache_cluster_replicated_total", "Replications acknowledged by a replica.", nil, nil)
	descReplDropped    = prometheus.NewDesc("ecache_cluster_replications_dropped_total", "Replications lost: no hint could be kept.", nil, nil)
	descHintsStored    = prometheus.NewDesc("ecache_hints_stored_total", "Replications kept as hints for an unreachable replica.", nil, nil)
	descHintsPending   = prometheus.NewDesc("ecache_hints_pending", "Hints held now.", nil, nil)
	descHintsDelivered = prometheus.NewDesc("ecache_hints_delivered_total", "Hints a returning replica acknowledged.", nil, nil)
	descHintsDropped   = prometheus.NewDesc("ecache_hints_dropped_total", "Hints dropped or refused by the bounded hint store.", nil, nil)
	descCoalesced      = prometheus.NewDesc("ecache_cluster_replications_coalesced_total", "Background replications folded into one already queued for the same key and replica.", nil, nil)
	descHintsForgotten = prometheus.NewDesc("ecache_hints_forgotten_total", "Hints dropped because their target node was forgotten by the cluster (dead or left longer than the gossip dead retention).", nil, nil)
	descReadRepairs    = prometheus.NewDesc("ecache_read_repairs_total", "Stale replicas repaired by R>1 reads.", nil, nil)

	descRebalPartsSent    = prometheus.NewDesc("ecache_rebalance_partitions_sent_total", "Partitions streamed completely to the owners they were owed to.", nil, nil)
	descRebalPartsDropped = prometheus.NewDesc("ecache_rebalance_partitions_dropped_total", "Partitions emptied after their new owners acknowledged them.", nil, nil)
	descRebalObjectsSent  = prometheus.NewDesc("ecache_rebalance_objects_sent_total", "Objects an owner acknowledged during partition transfers.", nil, nil)
	descRebalFailures     = prometheus.NewDesc("ecache_rebalance_failures_total", "Partition transfers that failed and were retried.", nil, nil)
	descRebalPending      = prometheus.NewDesc("ecache_rebalance_pending_partitions", "Partitions the last rebalancing round left with work owed.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMemBytes, descMemLimit, descMemEntries, descMemHits, descMemMisses,
		descMemEvictions, descPending, descFlushes, descExpired, descFailed, descDiskUsage, descCompactions,
		descFlushCount, descReadAmp, descConns, descAccepted, descRejected,
		descForwarded, descReplicated, descReplDropped, descHintsStored, descHintsPending,
		descHintsDelivered, descHintsDropped, descHintsForgotten, descCoalesced, descReadRepairs,
		descRebalPartsSent, descRebalPartsDropped, descRebalObjectsSent, descRebalFailures, descRebalPending} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	st := c.n.store.Stats()
	gauge(descMemBytes, float64(st.MemoryBytes))
	gauge(descMemLimit, float64(st.MemoryLimit))
	gauge(descMemEntries, float64(st.MemoryEntries))
	counter(descMemHits, float64(st.Memory.Hits))
	counter(descMemMisses, float64(st.Memory.Misses))
	counter(descMemEvictions, float64(st.Memory.Evictions))
	gauge(descPending, float64(st.PendingBytes))
	counter(descFlushes, float64(st.Flushes))
	counter(descExpired, float64(st.Expired))
	failed := 0.0
	if st.Failed {
		failed = 1
	}
	gauge(descFailed, failed)
	if pm := c.n.store.PebbleMetrics(); pm != nil {
		gauge(descDiskUsage, float64(pm.DiskSpaceUsage()))
		counter(descCompactions, float64(pm.Compact.Count))
		counter(descFlushCount, float64(pm.Flush.Count))
		gauge(descReadAmp, float64(pm.ReadAmp()))
	}
	if c.n.cluster != nil {
		cs := c.n.ClusterStats()
		counter(descForwarded, float64(cs.Forwarded))
		counter(descReplicated, float64(cs.Replicated))
		counter(descReplDropped, float64(cs.Dropped))
		counter(descHintsStored, float64(cs.HintsStored))
		gauge(descHintsPending, float64(cs.HintsPending))
		counter(descHintsDelivered, float64(cs.HintsDelivered))
		counter(descHintsDropped, float64(cs.HintsDropped))
		counter(descHintsForgotten, float64(cs.HintsForgotten))
		counter(descCoalesced, float64(cs.Coalesced))
		counter(descReadRepairs, float64(cs.ReadRepairs))
		rs := c.n.RebalanceStats()
		counter(descRebalPartsSent, float64(rs.PartitionsSent))
		counter(descRebalPartsDropped, float64(rs.PartitionsDropped))
		counter(descRebalObjectsSent, float64(rs.ObjectsSent))
		counter(descRebalFailures, float64(rs.Failures))
		gauge(descRebalPending, float64(rs.PendingPartitions))
	}
	if c.n.server != nil {
		ss := c.n.server.Stats()
		gauge(descConns, float64(ss.Conns))
		counter(descAccepted, float64(ss.Accepted))
		counter(descRejected, float64(ss.Rejected))
	}
}

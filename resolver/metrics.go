package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/echlab/echlab/internal/inflight"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics counts queries by transport, qtype and rcode and keeps a latency
// histogram by transport, in its own Prometheus registry.
type Metrics struct {
	Registry *prometheus.Registry
	queries  *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	// The children of queries and latency already used, so that a query
	// costs a map lookup instead of hashing its label values.
	mu       sync.RWMutex
	counters map[queryKey]prometheus.Counter
	timers   map[string]prometheus.Observer
}

// queryKey is the label values of one queries_total child.
type queryKey struct {
	transport string
	qtype     int32 // noQType when the query has no question
	rcode     int
}

// newMetrics makes the collectors and registers them (and Go runtime
// collectors) in a fresh registry.
func newMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "echlab", Subsystem: "resolver", Name: "queries_total",
			Help: "DNS queries answered, by transport, query type and response code.",
		}, []string{"transport", "qtype", "rcode"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "echlab", Subsystem: "resolver", Name: "query_duration_seconds",
			Help:    "Time the handler took to answer a query, by transport.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 16), // 5µs .. ~164ms
		}, []string{"transport"}),
		counters: map[queryKey]prometheus.Counter{},
		timers:   map[string]prometheus.Observer{},
	}
	m.Registry.MustRegister(m.queries, m.latency, collectors.NewGoCollector())
	return m
}

// Wrap returns a Handler that answers with h and records the query.
func (m *Metrics) Wrap(h Handler) Handler {
	// A middleware, so that the UDP fast path counts its queries too.
	return &middleware{next: h, observe: m.observeFast, Handler: HandlerFunc(func(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg {
		start := time.Now()
		resp := h.Answer(ctx, req, meta)
		k := queryKey{transport: meta.Transport, qtype: noQType, rcode: resp.Rcode}
		if req != nil && len(req.Question) > 0 {
			k.qtype = int32(req.Question[0].Qtype)
		}
		m.mu.RLock()
		c, okc := m.counters[k]
		o, oko := m.timers[k.transport]
		m.mu.RUnlock()
		if !okc || !oko {
			c, o = m.children(k)
		}
		c.Inc()
		o.Observe(time.Since(start).Seconds())
		return resp
	})}
}

// noQType stands for a query without a question in queryKey: qtype 0
// is a valid (reserved) type, so a question of type 0 is labelled by its
// name and a missing question NONE.
const noQType = -1

// children returns the counter and the latency observer of k, making
// and remembering them the first time.
func (m *Metrics) children(k queryKey) (prometheus.Counter, prometheus.Observer) {
	qtype := "NONE"
	if k.qtype != noQType {
		qtype = typeName(uint16(k.qtype))
	}
	c := m.queries.WithLabelValues(k.transport, qtype, rcodeName(k.rcode))
	o := m.latency.WithLabelValues(k.transport)
	m.mu.Lock()
	m.counters[k] = c
	m.timers[k.transport] = o
	m.mu.Unlock()
	return c, o
}

// HTTPHandler serves the metrics in the Prometheus text format.
func (m *Metrics) HTTPHandler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// MetricsServer serves /metrics over plain HTTP.
type MetricsServer struct {
	srv *http.Server
	ln  net.Listener
	g   *inflight.Group // Serve, each connection and each request
}

// startMetrics listens on addr ("" means 127.0.0.1:0) and serves
// m at /metrics.
func startMetrics(m *Metrics, addr string) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", orLoopback(addr))
	if err != nil {
		return nil, fmt.Errorf("resolver: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.HTTPHandler())
	g := &inflight.Group{}
	srv := &http.Server{Handler: g.Handler(mux), ConnState: g.ConnState(nil), ReadHeaderTimeout: 10 * time.Second}
	g.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ln.Close()
		}
	})
	return &MetricsServer{srv: srv, ln: ln, g: g}, nil
}

// Addr returns the address the server listens on.
func (s *MetricsServer) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, closes its connections and waits for its
// goroutines.
func (s *MetricsServer) Close() error {
	s.g.Close()
	err := s.srv.Close()
	s.g.Wait()
	return err
}

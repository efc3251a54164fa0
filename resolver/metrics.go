package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	}
	m.Registry.MustRegister(m.queries, m.latency, collectors.NewGoCollector())
	return m
}

// Wrap returns a Handler that answers with h and records the query.
func (m *Metrics) Wrap(h Handler) Handler {
	return HandlerFunc(func(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg {
		start := time.Now()
		resp := h.Answer(ctx, req, meta)
		qtype := "NONE"
		if req != nil && len(req.Question) > 0 {
			qtype = typeName(req.Question[0].Qtype)
		}
		m.queries.WithLabelValues(meta.Transport, qtype, rcodeName(resp.Rcode)).Inc()
		m.latency.WithLabelValues(meta.Transport).Observe(time.Since(start).Seconds())
		return resp
	})
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

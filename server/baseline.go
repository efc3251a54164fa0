package server

// StartBaseline starts the same site as Start but without ECH: cfg.Keys is
// ignored and ECH ClientHellos are answered from the ClientHelloOuter, so
// the lab can compare handshakes with and without ECH on one code path.
func StartBaseline(cfg Config) (*Server, error) {
	cfg.Keys = nil
	cfg.Mode = "baseline"
	return Start(cfg)
}

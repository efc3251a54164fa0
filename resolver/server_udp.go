package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// headerLen is the length of the fixed DNS header.
const headerLen = 12

// maxUDPInFlight bounds the queries a UDP server answers at once; beyond
// it, reading pauses and the kernel's socket buffer absorbs (or drops) the
// excess.
const maxUDPInFlight = 512

// UDPServer serves Do53 over UDP.
type UDPServer struct {
	conn    net.PacketConn
	h       Handler
	maxSize int
	// fast answers plain queries from compiled answers when h is an
	// Authority behind middlewares only; obs are their observers.
	fast   *Authority
	obs    []func(*fastObs)
	wg     sync.WaitGroup
	closed atomic.Bool
	ctx    context.Context // of every query; Close cancels it
	cancel context.CancelFunc
}

// StartUDP listens on addr ("" means 127.0.0.1:0) and serves h until
// Close. Responses are truncated (TC=1) to the client's EDNS(0) size,
// bounded by maxSize (0 means 1232), or to 512 octets, and compressed
// as over TCP. When h is an *Authority, alone or behind the metrics and
// query log, plain queries are answered from wire-format answers compiled
// from its zones (fastpath.go), byte for byte as h would answer them.
func StartUDP(h Handler, addr string, maxSize int) (*UDPServer, error) {
	conn, err := net.ListenPacket("udp", orLoopback(addr))
	if err != nil {
		return nil, fmt.Errorf("resolver: udp: %w", err)
	}
	return serveUDP(conn, h, maxSize), nil
}

// serveUDP serves h on conn until Close; maxSize is as for StartUDP.
func serveUDP(conn net.PacketConn, h Handler, maxSize int) *UDPServer {
	if maxSize <= 0 {
		maxSize = defaultUDPSize
	}
	s := &UDPServer{conn: conn, h: h, maxSize: maxSize}
	if _, ok := conn.(*net.UDPConn); ok {
		s.fast, s.obs = fastChain(h)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.loop()
	return s
}

// Addr returns the address the server listens on.
func (s *UDPServer) Addr() net.Addr { return s.conn.LocalAddr() }

// Close stops the server, cancels the context of the queries in flight
// and waits for their handlers to return.
func (s *UDPServer) Close() error {
	s.closed.Store(true)
	s.cancel()
	err := s.conn.Close()
	s.wg.Wait()
	return err
}

func (s *UDPServer) loop() {
	defer s.wg.Done()
	if s.fast != nil {
		s.fastLoop(s.conn.(*net.UDPConn))
		return
	}
	buf := make([]byte, dns.MaxMsgSize)
	sem := make(chan struct{}, maxUDPInFlight)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.goHandle(sem, buf[:n], from)
	}
}

// goHandle answers a copy of pkt through the Handler on a goroutine, at
// most maxUDPInFlight at once.
func (s *UDPServer) goHandle(sem chan struct{}, pkt []byte, from net.Addr) {
	pkt = append([]byte(nil), pkt...)
	sem <- struct{}{}
	s.wg.Add(1)
	go func() {
		defer func() { <-sem; s.wg.Done() }()
		s.handle(pkt, from)
	}()
}

func (s *UDPServer) handle(pkt []byte, from net.Addr) {
	if b := udpReply(s.ctx, s.h, pkt, from, s.maxSize); b != nil {
		s.conn.WriteTo(b, from)
	}
}

// udpReply is the slow path: h's answer to the UDP query pkt, truncated
// to the client's size (bounded by maxSize) and compressed, or nil when
// pkt is to be dropped.
func udpReply(ctx context.Context, h Handler, pkt []byte, from net.Addr, maxSize int) []byte {
	req := decodeQuery(pkt)
	if req == nil || req.Response {
		return nil // no header to answer, or a response: drop it
	}
	size := udpSize(req, maxSize)
	resp := h.Answer(ctx, req, Meta{Transport: TransportUDP, Client: from, UDPSize: size})
	resp.Truncate(size)
	resp.Compress = true // Truncate turns it off when the message fits anyway
	b, err := resp.Pack()
	if err != nil {
		return nil
	}
	return b
}

// udpSize is the largest response a UDP client can take: its EDNS(0)
// size bounded by ours, or 512 without EDNS(0).
func udpSize(req *dns.Msg, ours int) int {
	opt := req.IsEdns0()
	if opt == nil {
		return dns.MinMsgSize
	}
	return max(dns.MinMsgSize, min(int(opt.UDPSize()), ours))
}

// decodeQuery unpacks a query. When the message is malformed but has a
// header, it returns a message holding only that header (ID, opcode, flags)
// so that the Handler answers FORMERR; with no header it returns nil.
func decodeQuery(b []byte) *dns.Msg {
	m := new(dns.Msg)
	if err := m.Unpack(b); err == nil {
		return m
	}
	if len(b) < headerLen {
		return nil
	}
	flags := binary.BigEndian.Uint16(b[2:])
	m = new(dns.Msg)
	m.Id = binary.BigEndian.Uint16(b)
	m.Response = flags&(1<<15) != 0
	m.Opcode = int(flags>>11) & 0xf
	m.RecursionDesired = flags&(1<<8) != 0
	return m
}

func orLoopback(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

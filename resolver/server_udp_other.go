//go:build !(linux && (amd64 || arm64))

package resolver

import "net"

// fastLoop serves conn through the fast path, one query at a time.
func (s *UDPServer) fastLoop(conn *net.UDPConn) { s.fastLoopPortable(conn) }

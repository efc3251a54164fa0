package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestServeOnce(t *testing.T) {
	got := make(chan string, 1)
	addr := ServeOnce(t, func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.Close()
	select {
	case s := <-got:
		if s != "hello" {
			t.Errorf("served %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve not called")
	}
}

func TestServeEach(t *testing.T) {
	addr := ServeEach(t, func(c net.Conn) { io.Copy(c, c) })
	for i := range 3 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte{'a' + byte(i)}
		c.Write(msg)
		got := make([]byte, 1)
		if _, err := io.ReadFull(c, got); err != nil || got[0] != msg[0] {
			t.Errorf("connection %d echoed %q, %v", i, got, err)
		}
		c.Close()
	}
}

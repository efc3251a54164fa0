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

package council_test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy is a TCP proxy on 127.0.0.1 in front of the live server, for real network faults. It
// forwards the client's bytes unchanged; the server's bytes go through reply (n is the
// connection's number, from 1), or unchanged when reply is nil. cut closes every connection open
// now; the proxy keeps accepting new ones until the test ends.
type tcpProxy struct {
	lis    net.Listener
	target string
	reply  func(n int32, client, server net.Conn)
	conns  atomic.Int32 // connections accepted
	closed chan struct{}

	mu   sync.Mutex
	open []net.Conn
}

func startProxy(t *testing.T, target string, reply func(n int32, client, server net.Conn)) *tcpProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{lis: lis, target: target, reply: reply, closed: make(chan struct{})}
	go p.accept()
	t.Cleanup(func() {
		close(p.closed)
		_ = lis.Close()
		p.cut()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.lis.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		client, err := p.lis.Accept()
		if err != nil { // closed: the test is over
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		p.open = append(p.open, client, server)
		p.mu.Unlock()
		go pipe(server, client)
		if n := p.conns.Add(1); p.reply != nil {
			go p.reply(n, client, server)
		} else {
			go pipe(client, server)
		}
	}
}

// cut closes every connection open now, as a network fault would.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		_ = c.Close()
	}
	p.open = nil
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// forwardUntilFirstReply reads the server's bytes from src as HTTP/2 frames and forwards them to
// dst until the first DATA frame of a stream (the first reply message), which it keeps: it
// returns true then, and false if either side failed first. The caller closes both.
func forwardUntilFirstReply(dst, src net.Conn) bool {
	const frameHeader, frameData = 9, 0x0
	for {
		frame := make([]byte, frameHeader)
		if _, err := io.ReadFull(src, frame); err != nil {
			return false
		}
		length := int(frame[0])<<16 | int(frame[1])<<8 | int(frame[2])
		stream := binary.BigEndian.Uint32(frame[5:9]) & 0x7fffffff
		frame = append(frame, make([]byte, length)...)
		if _, err := io.ReadFull(src, frame[frameHeader:]); err != nil {
			return false
		}
		if frame[3] == frameData && stream != 0 && length > 0 {
			return true
		}
		if _, err := dst.Write(frame); err != nil {
			return false
		}
	}
}

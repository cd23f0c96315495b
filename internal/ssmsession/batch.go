package ssmsession

import (
	"net"
	"sync"
	"sync/atomic"
)

// batchConn is the network connection under a data channel's websocket.
// Writes made between begin and end go out as one write: a batch of
// acknowledgements, or a frame the websocket library would write as header
// and payload separately, costs one system call instead of one each. And
// before each read from the network it calls idle, so the acknowledgements
// owed for everything the websocket had buffered go out together, just
// before this end would wait for more.
type batchConn struct {
	net.Conn
	idle atomic.Pointer[func()]

	mu   sync.Mutex
	hold int
	buf  []byte
}

func newBatchConn(c net.Conn) *batchConn { return &batchConn{Conn: c} }

// setIdle sets what runs before each read; nil runs nothing.
func (b *batchConn) setIdle(f func()) {
	if f == nil {
		b.idle.Store(nil)
		return
	}
	b.idle.Store(&f)
}

func (b *batchConn) Read(p []byte) (int, error) {
	if f := b.idle.Load(); f != nil {
		(*f)()
	}
	return b.Conn.Read(p)
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hold > 0 {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

// begin starts gathering writes; calls nest.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.hold++
	b.mu.Unlock()
}

// end stops gathering and writes what was gathered, once the outermost
// begin has ended.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hold--
	if b.hold > 0 || len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	if cap(b.buf) > 1<<20 {
		b.buf = nil // a burst of resends should not pin its buffer
	}
	return err
}

// batchListener hands out accepted connections as batchConns.
type batchListener struct{ net.Listener }

// NewBatchListener wraps ln so that data channels served on its
// connections batch their writes; an Agent attached to a websocket on any
// other connection still works, one write per message.
func NewBatchListener(ln net.Listener) net.Listener { return batchListener{ln} }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newBatchConn(c), nil
}

// batchOf finds the batchConn under a websocket link, when there is one and
// no TLS sits between (the client passes its own).
func batchOf(l link) *batchConn {
	nc, ok := l.(interface{ NetConn() net.Conn })
	if !ok {
		return nil
	}
	b, _ := nc.NetConn().(*batchConn)
	return b
}

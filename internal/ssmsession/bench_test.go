package ssmsession

import (
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// sink reads and discards, answering one byte per 1 MiB so the sender
// knows everything arrived.
func sink(c net.Conn) {
	buf := make([]byte, 256<<10)
	var n int
	for {
		k, err := c.Read(buf)
		n += k
		for n >= 1<<20 {
			n -= 1 << 20
			c.Write([]byte{1})
		}
		if err != nil {
			return
		}
	}
}

// throughput sends mib MiB on c and waits for the sink's receipts.
func throughput(b *testing.B, c net.Conn, mib int) time.Duration {
	block := make([]byte, 1<<20)
	ack := make([]byte, mib)
	start := time.Now()
	go func() {
		for range mib {
			c.Write(block)
		}
	}()
	if _, err := io.ReadFull(c, ack); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkThroughput moves data through a port session (multiplexed, as
// port forwarding is, and single-stream, as SSH is) and through raw
// loopback TCP in the same run; "ratio" is tunnel/raw throughput.
func BenchmarkThroughput(b *testing.B) { benchmarkTransfer(b, sink, throughput) }

// benchmarkTransfer runs move (mib MiB one way over a connection to a port
// served by serve) on raw loopback TCP and through each kind of port
// session, and reports throughput both ways and their ratio.
func benchmarkTransfer(b *testing.B, serve func(net.Conn), move func(b *testing.B, c net.Conn, mib int) time.Duration) {
	for _, bc := range []struct {
		name string
		st   func(port int) SessionType
	}{{"port-forwarding", portForwarding}, {"ssh-stream", sshSession}} {
		b.Run(bc.name, func(b *testing.B) {
			port := listenTCP(b, serve)
			raw, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			ta := newTestAgent(b, bc.st(port), loopDial(port))
			s := dial(b, ta, nil)
			var tun net.Conn
			if s.Multiplexed() {
				tun, err = s.Open()
			} else {
				var rw io.ReadWriteCloser
				rw, err = s.Stream()
				tun = fakeConn{rw}
			}
			if err != nil {
				b.Fatal(err)
			}
			defer tun.Close()
			const mib = 64
			var rawT, tunT time.Duration
			b.SetBytes(mib << 20)
			b.ResetTimer()
			for range b.N {
				// Raw TCP allocates nothing, so a collection during its
				// run would be the tunnel's garbage billed to it: collect
				// first. The tunnel pays for its own.
				runtime.GC()
				rawT += move(b, raw, mib)
				tunT += move(b, tun, mib)
			}
			b.StopTimer()
			mb := float64(b.N*mib<<20) / 1e6
			b.ReportMetric(mb/tunT.Seconds(), "tunnel-MB/s")
			b.ReportMetric(mb/rawT.Seconds(), "raw-MB/s")
			b.ReportMetric(rawT.Seconds()/tunT.Seconds(), "ratio")
		})
	}
}

// source answers each one-byte request n with n MiB.
func source(c net.Conn) {
	block := make([]byte, 1<<20)
	req := make([]byte, 1)
	for {
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		for range int(req[0]) {
			if _, err := c.Write(block); err != nil {
				return
			}
		}
	}
}

// download asks c's source for mib MiB and reads them all.
func download(b *testing.B, c net.Conn, mib int) time.Duration {
	buf := make([]byte, 256<<10)
	start := time.Now()
	if _, err := c.Write([]byte{byte(mib)}); err != nil {
		b.Fatal(err)
	}
	for left := mib << 20; left > 0; {
		n, err := c.Read(buf[:min(len(buf), left)])
		if err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	return time.Since(start)
}

// BenchmarkDownload is BenchmarkThroughput the other way: the agent sends
// what the port writes, and the client receives and acknowledges it, as in
// an scp from the server.
func BenchmarkDownload(b *testing.B) { benchmarkTransfer(b, source, download) }

type fakeConn struct{ io.ReadWriteCloser }

func (fakeConn) LocalAddr() net.Addr              { return nil }
func (fakeConn) RemoteAddr() net.Addr             { return nil }
func (fakeConn) SetDeadline(time.Time) error      { return nil }
func (fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (fakeConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkRoundTrip measures a one-byte echo through the session and over
// raw loopback TCP; "ratio" is tunnel latency/raw latency.
func BenchmarkRoundTrip(b *testing.B) {
	port := listenTCP(b, echo)
	raw, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	ta := newTestAgent(b, portForwarding(port), loopDial(port))
	s := dial(b, ta, nil)
	tun, err := s.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer tun.Close()
	ping := func(c net.Conn) time.Duration {
		buf := []byte{7}
		start := time.Now()
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var rawT, tunT time.Duration
	for range b.N {
		rawT += ping(raw)
		tunT += ping(tun)
	}
	b.ReportMetric(float64(tunT.Microseconds())/float64(b.N), "tunnel-µs/op")
	b.ReportMetric(float64(rawT.Microseconds())/float64(b.N), "raw-µs/op")
	b.ReportMetric(float64(tunT)/float64(rawT), "ratio")
}

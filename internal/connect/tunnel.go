package connect

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"

	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// Pipe joins a remote connection to a local reader and writer (a
// ProxyCommand's stdin and stdout) until the remote end closes or ctx
// ends. The end of in does not end the pipe: a session carries no
// half-close, and the remote side still has bytes to deliver; OpenSSH
// signals a ProxyCommand when it is done.
func Pipe(ctx context.Context, conn io.ReadWriteCloser, in io.Reader, out io.Writer) error {
	remote := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, conn)
		remote <- err
	}()
	go ssmsession.Copy(conn, in)
	select {
	case err := <-remote:
		return err
	case <-ctx.Done():
		return nil
	}
}

// Forward accepts connections on ln until ctx ends and joins each to a new
// connection from open (a stream of one session). When either side of a
// pair ends, both close: the session's streams carry no half-close. A
// connection that open refuses is closed and reported to failed; the
// listener keeps serving.
func Forward(ctx context.Context, ln net.Listener, open func() (io.ReadWriteCloser, error), failed func(error)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		local, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			remote, err := open()
			if err != nil {
				local.Close()
				if failed != nil {
					failed(err)
				}
				return
			}
			join(ctx, local, remote)
		}()
	}
}

// join copies both ways until either direction ends or ctx does.
func join(ctx context.Context, a, b io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	go func() { ssmsession.Copy(a, b); done <- struct{}{} }()
	go func() { ssmsession.Copy(b, a); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	a.Close()
	b.Close()
	<-done
}

package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proxyDialTimeout bounds a proxy's dial to its target: a target that does not answer within it
// is treated as down (the accepted connection is reset).
const proxyDialTimeout = 2 * time.Second

// TCPProxy forwards every TCP connection accepted on its listener to one target address, byte for
// byte, in both directions. It is how the Cluster routes NATS cluster traffic so that it can cut
// it: Cut closes every live forwarded connection and refuses (resets) new ones until Restore.
// A connection ends, on both sides, when either side closes it or the target cannot be dialed.
// Its methods are safe for concurrent use; Close stops it and waits for its goroutines.
type TCPProxy struct {
	name   string
	target string
	ln     net.Listener
	logger *slog.Logger
	ctx    context.Context // cancelled by Close: aborts dials in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	cut      bool                    // guarded by mu
	closed   bool                    // guarded by mu
	conns    map[*proxyConn]struct{} // guarded by mu: live forwarded connections
	upLocals map[string]struct{}     // guarded by mu: every upstream local address ever used
	accepted uint64                  // guarded by mu: connections forwarded
	refused  uint64                  // guarded by mu: connections reset (cut, or target down)
}

// proxyConn is one forwarded connection: the accepted one (down) and the dialed one (up).
type proxyConn struct {
	down, up net.Conn
	once     sync.Once
}

func (pc *proxyConn) close() {
	pc.once.Do(func() {
		_ = pc.down.Close()
		_ = pc.up.Close()
	})
}

// NewTCPProxy listens on listen (host:port; port 0 picks a free one) and forwards what it
// accepts to target. name labels its log lines. It serves until Close.
func NewTCPProxy(name, listen, target string, logger *slog.Logger) (*TCPProxy, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("chaos: proxy %s: listen %s: %w", name, listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &TCPProxy{name: name, target: target, ln: ln, logger: logger.With("proxy", name), ctx: ctx, cancel: cancel,
		conns: map[*proxyConn]struct{}{}, upLocals: map[string]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address the proxy listens on, host:port.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *TCPProxy) Target() string { return p.target }

// Cut closes every live forwarded connection and makes the proxy reset every connection it
// accepts from now on, until Restore. It returns how many live connections it closed.
func (p *TCPProxy) Cut() int {
	p.mu.Lock()
	p.cut = true
	live := make([]*proxyConn, 0, len(p.conns))
	for pc := range p.conns {
		live = append(live, pc)
	}
	p.mu.Unlock()
	for _, pc := range live {
		pc.close()
	}
	if len(live) > 0 {
		p.logger.Debug("cut", "closed", len(live))
	}
	return len(live)
}

// Restore undoes Cut: connections accepted from now on are forwarded again.
func (p *TCPProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// IsCut reports whether the proxy is cut.
func (p *TCPProxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Live returns how many forwarded connections are open now.
func (p *TCPProxy) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Counts returns how many connections the proxy has forwarded and how many it has reset
// (because it was cut or the target could not be dialed) since it started.
func (p *TCPProxy) Counts() (forwarded, reset uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.refused
}

// usedUpstreamLocal reports whether addr (host:port) is the local address of a connection this
// proxy has dialed to its target, live or not: how the target sees a connection that came
// through the proxy.
func (p *TCPProxy) usedUpstreamLocal(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.upLocals[addr]
	return ok
}

// Close stops accepting, closes every forwarded connection and waits until the proxy's
// goroutines have ended. Safe to call more than once.
func (p *TCPProxy) Close() error {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	var err error
	if !already {
		p.cancel()
		err = p.ln.Close()
		p.Cut()
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("chaos: proxy %s: close: %w", p.name, err)
	}
	return nil
}

func (p *TCPProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			p.logger.Warn("accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		p.mu.Lock()
		stop := p.cut || p.closed
		if stop {
			p.refused++
		}
		p.mu.Unlock()
		if stop {
			reset(c)
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for the accepted connection down and copies both ways until either
// side closes or the proxy cuts it.
func (p *TCPProxy) serve(down net.Conn) {
	defer p.wg.Done()
	var d net.Dialer
	dctx, cancel := context.WithTimeout(p.ctx, proxyDialTimeout)
	up, err := d.DialContext(dctx, "tcp", p.target)
	cancel()
	if err != nil {
		p.mu.Lock()
		p.refused++
		p.mu.Unlock()
		p.logger.Debug("target unreachable; connection reset", "target", p.target, "err", err)
		reset(down)
		return
	}
	pc := &proxyConn{down: down, up: up}
	p.mu.Lock()
	if p.cut || p.closed { // cut while dialing
		p.refused++
		p.mu.Unlock()
		reset(down)
		_ = up.Close()
		return
	}
	p.conns[pc] = struct{}{}
	p.upLocals[up.LocalAddr().String()] = struct{}{}
	p.accepted++
	p.mu.Unlock()

	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(up, down)
		pc.close()
	}()
	_, _ = io.Copy(down, up)
	pc.close()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// reset closes c with a TCP reset (no lingering FIN handshake): the peer sees the connection
// refused at once.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// refusingPort is a TCP port bound on a host but never listened on: the kernel answers every
// connection attempt to it with a reset (ECONNREFUSED), and no other socket can take the port
// while it is held. A NATS node advertises one as its cluster address so that routes learned
// by gossip (which dial the advertised address) fail at once instead of bypassing the proxies.
type refusingPort struct {
	fd   int
	addr string
}

// newRefusingPort binds a free port on host (an IP literal, v4 or v6) without listening.
func newRefusingPort(host string) (*refusingPort, error) {
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, fmt.Errorf("chaos: refusing port: host %q is not an IP address", host)
	}
	var (
		fd  int
		err error
		sa  syscall.Sockaddr
	)
	if ip4 := ip.To4(); ip4 != nil {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		a := &syscall.SockaddrInet4{}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		fd, err = syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		a := &syscall.SockaddrInet6{}
		copy(a.Addr[:], ip.To16())
		sa = a
	}
	if err != nil {
		return nil, fmt.Errorf("chaos: refusing port: socket: %w", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("chaos: refusing port: bind %s: %w", host, err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("chaos: refusing port: getsockname: %w", err)
	}
	var port int
	switch a := got.(type) {
	case *syscall.SockaddrInet4:
		port = a.Port
	case *syscall.SockaddrInet6:
		port = a.Port
	}
	return &refusingPort{fd: fd, addr: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// Close releases the port.
func (r *refusingPort) Close() error {
	if r == nil || r.fd < 0 {
		return nil
	}
	err := syscall.Close(r.fd)
	r.fd = -1
	return err
}

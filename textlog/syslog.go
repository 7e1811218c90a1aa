package textlog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"portknock/input"
	"portknock/sequence"
)

// The networks a SyslogListener can listen on.
const (
	SyslogUDP    = "udp"
	SyslogTCP    = "tcp"
	SyslogUDPTCP = "udp+tcp" // both, on the same address and port
	// SyslogTLS is RFC 5425: syslog over TLS over TCP.
	SyslogTLS = "tls"
)

// Defaults and limits of a SyslogListener.
const (
	// DefaultSyslogAddr listens on loopback only: receiving from other
	// hosts must be the administrator's explicit choice, since anyone who
	// can reach the socket can write log lines.
	DefaultSyslogAddr = "127.0.0.1:514"
	// DefaultSyslogTLSAddr is DefaultSyslogAddr with the port RFC 5425
	// gives syslog over TLS.
	DefaultSyslogTLSAddr = "127.0.0.1:6514"
	// DefaultMaxMessage is generous for firewall log lines (a few hundred
	// bytes) and four times the 2 KiB that RFC 5425 asks receivers to
	// accept.
	DefaultMaxMessage = 8 << 10
	// MaxSyslogMessage bounds MaxMessage: no UDP datagram is larger, and
	// each TCP connection holds a buffer of this size.
	MaxSyslogMessage = 64 << 10
	// DefaultMaxConns bounds the TCP connections served at once. A
	// firewall forwards over one connection; the rest is headroom for
	// reconnects and several senders.
	DefaultMaxConns = 64
	// DefaultMaxConnsPerSender bounds the connections one sender address
	// may hold, so that one sender cannot take every slot from the others.
	// A forwarder needs one per destination action, and one more while it
	// reconnects.
	DefaultMaxConnsPerSender = 8
	// DefaultMessageTimeout is how long a TCP message may take to arrive
	// from its first byte, and a TLS handshake from its start. A forwarder
	// writes a message at once; a sender that dribbles bytes is holding a
	// slot, not logging.
	DefaultMessageTimeout = 10 * time.Second
	// DefaultIdleTimeout closes TCP connections that sent nothing for this
	// long, so that vanished senders do not hold connection slots forever.
	// Senders reconnect when they have something to say.
	DefaultIdleTimeout = 5 * time.Minute
)

// Refused and cut-off senders are logged at warning level, rate-limited:
// each sender at most once every syslogWarnEvery, and at most
// syslogWarnSenders senders in that time, so that a flood from many
// (perhaps spoofed) addresses costs a bounded number of lines.
const (
	syslogWarnEvery   = 10 * time.Second
	syslogWarnSenders = 16
)

// syslogMaxLenDigits bounds an octet count's digits. Nine digits allow lengths
// up to a gigabyte, far beyond any syslog message; a longer count means a
// stream that is not octet-counted at all (or no longer in step), and
// reading it as a count would swallow the connection.
const syslogMaxLenDigits = 9

// syslogLoopback is the Allow list when none is given.
var syslogLoopback = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// SyslogListener receives syslog messages over UDP, TCP or TLS, as
// firewalls forward their logs (pfSense and OPNsense remote syslog,
// rsyslog and syslog-ng forwarding, BSD syslogd), and parses every line of
// every message. Set the fields, call Listen if the bound addresses or
// bind errors are wanted early, then Run once. A SyslogListener must not be
// copied after that.
//
// A message is handed to Parser unchanged, syslog header and all: the
// formats recognise syslog framing themselves. A message holding several
// lines (separated by LF or NUL) is parsed line by line; a CR ending a line
// is dropped and empty lines are ignored.
//
// TCP streams are framed as RFC 6587 describes, detected per message: a
// message starting with a digit is octet-counted ("MSG-LEN SP MSG", as
// rsyslog detects it), any other runs to the next LF or NUL (non-transparent
// framing). A bare line that starts with digits and a blank is therefore
// read as a length over TCP; such lines belong in a syslog header or in UDP.
// TLS connections (RFC 5425) carry the same stream inside TLS: octet
// counting as the RFC asks, and newline framing as rsyslog sends by
// default.
//
// Who may send is checked as far as each transport allows. A UDP
// sender's address is whatever the datagram claims, so a UDP listener
// beyond loopback is refused unless AcceptSpoofable says otherwise. A TCP
// sender's address is proven by the handshake; Allow is checked against
// it. A TLS sender can also be asked for a certificate signed by a
// client CA. A TCP or TLS sender holds a connection slot only while it
// sends whole messages in time: MessageTimeout bounds each message and
// the TLS handshake, IdleTimeout the silence between messages, and
// MaxConnsPerSender its share of the MaxConns slots.
type SyslogListener struct {
	// Name identifies the input in events and logs.
	Name string
	// Network is SyslogUDP, SyslogTCP, SyslogUDPTCP or SyslogTLS;
	// SyslogUDP if empty, the transport syslog senders use unless told
	// otherwise.
	Network string
	// Addr is the host:port to listen on; DefaultSyslogAddr if empty
	// (DefaultSyslogTLSAddr for SyslogTLS). Ports below 1024 need
	// CAP_NET_BIND_SERVICE.
	Addr string
	// AcceptSpoofable lets a UDP listener listen on an address that is
	// not loopback (see LoopbackListen). Anyone who can send it a datagram
	// can forge the sender address, and so knock in the name of any
	// allowed sender; without it, Listen refuses.
	AcceptSpoofable bool
	// TLS holds the certificate, key and client CAs of a SyslogTLS
	// listener, which needs them; other networks take none. SetTLS
	// replaces them while the listener runs.
	TLS *SyslogCredentials
	// Allow lists the senders whose messages are read; loopback only
	// (127.0.0.0/8 and ::1) if empty. IPv4-mapped IPv6 senders match IPv4
	// prefixes. UDP datagrams from other senders are dropped and TCP
	// connections closed at once; both are counted as Denied.
	Allow []netip.Prefix
	// Parser decides which lines are knocks.
	Parser Parser
	// MaxMessage is the longest message read, in bytes without framing;
	// DefaultMaxMessage if 0, at most MaxSyslogMessage. Longer messages
	// are skipped without being buffered and counted as Oversize.
	MaxMessage int
	// MaxConns bounds the TCP connections served at once;
	// DefaultMaxConns if 0. Connections beyond it are closed at once and
	// counted as Refused.
	MaxConns int
	// MaxConnsPerSender bounds the TCP connections served at once from
	// one sender address; DefaultMaxConnsPerSender if 0. Connections
	// beyond it are closed at once and counted as RefusedSender.
	MaxConnsPerSender int
	// MessageTimeout closes a TCP connection whose message has not
	// arrived whole this long after its first byte, or whose TLS
	// handshake has not ended this long after it began;
	// DefaultMessageTimeout if 0.
	MessageTimeout time.Duration
	// IdleTimeout closes a TCP connection that sent nothing for that long
	// between messages; DefaultIdleTimeout if 0.
	IdleTimeout time.Duration
	// Now stamps events, since the time in a forwarded line is the
	// sender's clock, often without a year or a zone; time.Now if nil.
	Now func() time.Time
	// Logger receives skipped lines, dropped messages and connections
	// (debug), senders denied, refused or cut off (warnings, rate-limited)
	// and the listener's life-cycle notes; slog.Default() if nil.
	Logger *slog.Logger

	mu      sync.Mutex
	bound   bool
	running bool
	closed  bool
	cancel  context.CancelFunc // ends a running Run
	udp     *net.UDPConn
	tcp     net.Listener
	cfg     syslogConfig
	// newTLS holds what SetTLS gave before Listen, which takes it over
	// the TLS field: the fields are the caller's, never written here.
	newTLS *SyslogCredentials

	tls     atomic.Pointer[SyslogCredentials] // the credentials handshakes use now
	emitMu  sync.Mutex                        // emit sees one caller at a time, as from a Source
	c       syslogCounters
	warns   syslogWarnLimit
	senders syslogSenders
}

// syslogConfig is a SyslogListener's fields with defaults applied,
// checked by Listen.
type syslogConfig struct {
	network     string
	addr        string
	allow       []netip.Prefix
	maxMessage  int
	maxConns    int
	maxPerSrc   int
	msgTimeout  time.Duration
	idle        time.Duration
	now         func() time.Time
	log         *slog.Logger
	tlsListener bool
}

type syslogCounters struct {
	lines     atomic.Uint64
	events    atomic.Uint64
	dropped   atomic.Uint64
	skipped   [reasonCount]atomic.Uint64
	messages  atomic.Uint64
	denied    atomic.Uint64
	oversize  atomic.Uint64
	malformed atomic.Uint64
	refused   atomic.Uint64
	refusedS  atomic.Uint64
	slow      atomic.Uint64
	handshake atomic.Uint64
	idle      atomic.Uint64
	open      atomic.Int64
}

var _ input.Input = (*SyslogListener)(nil)

// The names of a SyslogListener's own counters in its Stats.
const (
	// SyslogMessages counts the UDP datagrams and TCP messages read from
	// allowed senders, oversize ones excluded.
	SyslogMessages = "messages"
	// SyslogDenied counts datagrams dropped and connections closed
	// because the sender is not in Allow.
	SyslogDenied = "denied"
	// SyslogOversize counts messages longer than MaxMessage, dropped
	// unread; each is also a line skipped with ReasonTooLong.
	SyslogOversize = "oversize"
	// SyslogMalformed counts TCP connections whose framing broke: closed
	// by the listener for a bad length prefix, or ended by the sender
	// inside an octet-counted message.
	SyslogMalformed = "malformed"
	// SyslogRefused counts TCP connections closed at once because
	// MaxConns connections were open.
	SyslogRefused = "refused"
	// SyslogRefusedSender counts TCP connections closed at once because
	// their sender had MaxConnsPerSender connections open.
	SyslogRefusedSender = "refused_sender"
	// SyslogSlow counts TCP connections closed because a message, or the
	// TLS handshake, took longer than MessageTimeout.
	SyslogSlow = "slow"
	// SyslogHandshakeFailed counts TLS connections closed because the
	// handshake failed: no client certificate or one no client CA signed,
	// no common protocol version, or not TLS at all.
	SyslogHandshakeFailed = "handshake_failed"
	// SyslogIdle counts TCP connections closed after IdleTimeout without
	// data.
	SyslogIdle = "idle"
	// SyslogOpen is the number of TCP connections being served now (a
	// gauge).
	SyslogOpen = "open"
)

// Stats returns the listener's counters so far, as a Source counts its
// lines: Read counts the lines of the messages read, and each oversize
// message one line skipped with ReasonTooLong, so that inputs of either
// kind are reported alike. The listener's own counters follow, named by
// the Syslog* constants. It is safe to call at any time, also while Run
// is running.
func (l *SyslogListener) Stats() input.Stats {
	c := &l.c
	st := input.Stats{Unit: "lines", Events: c.events.Load(), Dropped: c.dropped.Load()}
	for r := range c.skipped {
		st.Skipped[r] = c.skipped[r].Load()
	}
	oversize := c.oversize.Load()
	st.Skipped[ReasonTooLong] += oversize
	st.Read = c.lines.Load() + oversize
	st.Counters = []input.Counter{
		{Name: SyslogMessages, Value: c.messages.Load()},
		{Name: SyslogDenied, Value: c.denied.Load()},
		{Name: SyslogOversize, Value: oversize},
		{Name: SyslogMalformed, Value: c.malformed.Load()},
		{Name: SyslogRefused, Value: c.refused.Load()},
		{Name: SyslogRefusedSender, Value: c.refusedS.Load()},
		{Name: SyslogSlow, Value: c.slow.Load()},
		{Name: SyslogHandshakeFailed, Value: c.handshake.Load()},
		{Name: SyslogIdle, Value: c.idle.Load()},
		{Name: SyslogOpen, Value: uint64(max(c.open.Load(), 0)), Gauge: true},
	}
	return st
}

// Listen checks the fields and binds the sockets. Run calls it when it has
// not been called; calling it first reports bind errors (a port in use, a
// privileged port) before anything runs, and lets Addrs report ports
// chosen by the system. Calling it again does nothing. A listener that
// will not Run after Listen must be closed with Close.
func (l *SyslogListener) Listen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("listener is closed")
	}
	if l.bound {
		return nil
	}
	cfg, err := l.config()
	if err != nil {
		return err
	}
	udp, tcp, err := bindSyslog(cfg.network, cfg.addr)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			err = fmt.Errorf("%w (ports below 1024 need CAP_NET_BIND_SERVICE)", err)
		}
		return err
	}
	if udp != nil {
		// Firewalls log in bursts; a larger buffer rides them out. The
		// kernel caps the size, which is fine.
		_ = udp.SetReadBuffer(1 << 20)
	}
	l.cfg, l.udp, l.tcp, l.bound = cfg, udp, tcp, true
	if cfg.tlsListener {
		l.tls.Store(l.credentials())
	}
	return nil
}

// SetTLS replaces the credentials of a TLS listener, as a reload does
// when certificates are renewed: handshakes from now on use t, and
// connections already open keep theirs. Before Listen it takes the TLS
// field's place.
func (l *SyslogListener) SetTLS(t *SyslogCredentials) error {
	if t == nil {
		return errors.New("no TLS credentials")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.bound {
		l.newTLS = t
		return nil
	}
	if !l.cfg.tlsListener {
		return errors.New("not a TLS listener")
	}
	l.tls.Store(t)
	return nil
}

// credentials returns the TLS credentials to start with: SetTLS's, else
// the TLS field's. l.mu must be held.
func (l *SyslogListener) credentials() *SyslogCredentials {
	if l.newTLS != nil {
		return l.newTLS
	}
	return l.TLS
}

// LoopbackListen reports whether every address a listener on addr (a
// host:port) can be reached at is a loopback address (127.0.0.0/8, ::1),
// so that only this host can send to it. A wildcard or empty host is
// not, and neither is a host name: what it resolves to is not the
// listener's to decide.
func LoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// config applies the defaults and checks the fields.
func (l *SyslogListener) config() (syslogConfig, error) {
	cfg := syslogConfig{
		network:    l.Network,
		addr:       l.Addr,
		maxMessage: l.MaxMessage,
		maxConns:   l.MaxConns,
		maxPerSrc:  l.MaxConnsPerSender,
		msgTimeout: l.MessageTimeout,
		idle:       l.IdleTimeout,
		now:        l.Now,
		log:        l.Logger,
	}
	if !l.Parser.Format.valid() {
		return cfg, fmt.Errorf("unknown format %d", l.Parser.Format)
	}
	switch cfg.network {
	case "":
		cfg.network = SyslogUDP
	case SyslogUDP, SyslogTCP, SyslogUDPTCP, SyslogTLS:
	default:
		return cfg, fmt.Errorf("unknown syslog network %q (want %s, %s, %s or %s)", cfg.network, SyslogUDP, SyslogTCP, SyslogUDPTCP, SyslogTLS)
	}
	cfg.tlsListener = cfg.network == SyslogTLS
	switch {
	case cfg.tlsListener && l.credentials() == nil:
		return cfg, errors.New("a TLS listener needs a certificate and key")
	case !cfg.tlsListener && l.credentials() != nil:
		return cfg, fmt.Errorf("TLS credentials given to a %s listener", cfg.network)
	}
	if cfg.addr == "" {
		cfg.addr = DefaultSyslogAddr
		if cfg.tlsListener {
			cfg.addr = DefaultSyslogTLSAddr
		}
	}
	if _, _, err := net.SplitHostPort(cfg.addr); err != nil {
		return cfg, fmt.Errorf("bad listen address: %w", err)
	}
	if (cfg.network == SyslogUDP || cfg.network == SyslogUDPTCP) && !l.AcceptSpoofable && !LoopbackListen(cfg.addr) {
		return cfg, fmt.Errorf("UDP on %s: UDP senders can be spoofed, so anyone who can reach the listener can knock in the name of an allowed sender; "+
			"listen on loopback, use TCP or TLS, or accept spoofable senders explicitly", cfg.addr)
	}
	switch {
	case cfg.maxMessage == 0:
		cfg.maxMessage = DefaultMaxMessage
	case cfg.maxMessage < 0 || cfg.maxMessage > MaxSyslogMessage:
		return cfg, fmt.Errorf("maximum message size %d is not in 1..%d", cfg.maxMessage, MaxSyslogMessage)
	}
	switch {
	case cfg.maxConns == 0:
		cfg.maxConns = DefaultMaxConns
	case cfg.maxConns < 0:
		return cfg, fmt.Errorf("maximum connections %d is negative", cfg.maxConns)
	}
	switch {
	case cfg.maxPerSrc == 0:
		cfg.maxPerSrc = DefaultMaxConnsPerSender
	case cfg.maxPerSrc < 0:
		return cfg, fmt.Errorf("maximum connections per sender %d is negative", cfg.maxPerSrc)
	}
	switch {
	case cfg.msgTimeout == 0:
		cfg.msgTimeout = DefaultMessageTimeout
	case cfg.msgTimeout < 0:
		return cfg, fmt.Errorf("message timeout %v is negative", cfg.msgTimeout)
	}
	switch {
	case cfg.idle == 0:
		cfg.idle = DefaultIdleTimeout
	case cfg.idle < 0:
		return cfg, fmt.Errorf("idle timeout %v is negative", cfg.idle)
	}
	if len(l.Allow) == 0 {
		cfg.allow = syslogLoopback
	}
	for _, p := range l.Allow {
		if !p.IsValid() {
			return cfg, fmt.Errorf("invalid allowed prefix %v", p)
		}
		cfg.allow = append(cfg.allow, syslogPrefix(p))
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	cfg.log = cfg.log.With("input", l.Name)
	return cfg, nil
}

// streamNetwork names the listener's stream transport in logs.
func (cfg *syslogConfig) streamNetwork() string {
	if cfg.tlsListener {
		return SyslogTLS
	}
	return SyslogTCP
}

// syslogPrefix masks p and turns an IPv4-mapped IPv6 prefix into the
// IPv4 prefix it means, since senders are compared unmapped.
func syslogPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// syslogAllowed reports whether sender is in allow. The sender is unmapped
// and stripped of its zone first: a dual-stack socket reports IPv4 senders
// as ::ffff:a.b.c.d, and netip.Prefix never contains a zoned address.
func syslogAllowed(allow []netip.Prefix, sender netip.Addr) bool {
	sender = sequence.NormalizeAddr(sender)
	for _, p := range allow {
		if p.Contains(sender) {
			return true
		}
	}
	return false
}

// bindSyslog binds the sockets of network at addr. For SyslogUDPTCP with
// port 0, the UDP socket takes the port the system chose for TCP, retrying
// a few times in case that UDP port is taken.
func bindSyslog(network, addr string) (*net.UDPConn, net.Listener, error) {
	listenUDP := func(addr string) (*net.UDPConn, error) {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		return pc.(*net.UDPConn), nil
	}
	switch network {
	case SyslogUDP:
		udp, err := listenUDP(addr)
		return udp, nil, err
	case SyslogTCP, SyslogTLS:
		tcp, err := net.Listen("tcp", addr)
		return nil, tcp, err
	}
	host, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		tcp, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		bound := tcp.Addr().(*net.TCPAddr).Port
		udp, err := listenUDP(net.JoinHostPort(host, strconv.Itoa(bound)))
		if err == nil {
			return udp, tcp, nil
		}
		tcp.Close()
		if port != "0" || attempt == 10 {
			return nil, nil, err
		}
	}
}

// Addrs returns the bound addresses, a *net.UDPAddr before a *net.TCPAddr,
// or nil before Listen (or Run) has bound them.
func (l *SyslogListener) Addrs() []net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	var addrs []net.Addr
	if l.udp != nil {
		addrs = append(addrs, l.udp.LocalAddr())
	}
	if l.tcp != nil {
		addrs = append(addrs, l.tcp.Addr())
	}
	return addrs
}

// Close releases the sockets and ends a running Run, as ending its context
// does. It is for a listener that Listen bound but that will not Run; a
// running listener is normally ended by its context.
func (l *SyslogListener) Close() error {
	l.mu.Lock()
	l.closed = true
	cancel := l.cancel
	l.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	l.closeSockets()
	return nil
}

// closeSockets closes the bound sockets, which makes blocked Accept and
// ReadFrom calls return.
func (l *SyslogListener) closeSockets() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.udp != nil {
		l.udp.Close()
	}
	if l.tcp != nil {
		l.tcp.Close()
	}
}

// Run receives messages until ctx ends, parses their lines and calls emit
// for every event, stamped with Time = Now() and Input = Name like a
// Source's. Like a Source it waits for emit to take each event
// (input.Wait): the senders' sockets buffer meanwhile. emit is called from
// one goroutine at a time, although messages are read by one goroutine per
// TCP connection and one for UDP; so while emit waits, nothing else is
// parsed, and emit must return once ctx has ended.
//
// Lines that are not events are counted per Reason; dropped datagrams and
// connections are counted (see Stats). Neither is fatal.
//
// Run binds the sockets unless Listen did, and closes them when it returns.
// It returns nil once ctx has ended and every connection has been closed
// and its goroutine has ended, and an error if the sockets cannot be bound
// or a socket fails; a listener runs once.
func (l *SyslogListener) Run(ctx context.Context, emit input.Emit) error {
	if err := l.Listen(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.running || l.closed {
		l.mu.Unlock()
		return errors.New("listener already ran or is closed")
	}
	l.running = true
	ctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	cfg, udp, tcp := l.cfg, l.udp, l.tcp
	l.mu.Unlock()
	defer cancel()
	defer l.closeSockets()
	// Closing the sockets is what interrupts Accept and ReadFrom.
	defer syslogAfterFunc(ctx, l.closeSockets)()

	l.logStart(cfg)

	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) {
		errOnce.Do(func() { runErr = err })
		cancel()
	}
	if udp != nil {
		wg.Go(func() {
			if err := l.serveUDP(ctx, cfg, udp, emit); err != nil {
				fail(err)
			}
		})
	}
	if tcp != nil {
		wg.Go(func() {
			if err := l.serveTCP(ctx, cfg, tcp, emit, &wg); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return runErr
}

// logStart notes where the listener listens and whom it hears, and warns
// about the likely mistake of listening beyond loopback while allowing
// only loopback senders.
func (l *SyslogListener) logStart(cfg syslogConfig) {
	addrs := l.Addrs()
	strs := make([]string, len(addrs))
	external := false
	for i, a := range addrs {
		strs[i] = a.Network() + "/" + a.String()
		if ap, err := netip.ParseAddrPort(a.String()); err == nil && !ap.Addr().IsLoopback() {
			external = true
		}
	}
	args := []any{"addrs", strs, "allow", cfg.allow}
	if t := l.tls.Load(); t != nil {
		args = append(args, "tls", true, "client_certs", t.ClientCertRequired())
	}
	cfg.log.Info("syslog listener started", args...)
	if external && len(l.Allow) == 0 {
		cfg.log.Warn("syslog listener is reachable beyond loopback but accepts only loopback senders; list the firewall's address under allow")
	}
}

// syslogAfterFunc is context.AfterFunc whose stop function also waits for
// f when it has started, so that nothing of the listener outlives Run.
func syslogAfterFunc(ctx context.Context, f func()) (stop func()) {
	done := make(chan struct{})
	s := context.AfterFunc(ctx, func() {
		defer close(done)
		f()
	})
	return func() {
		if !s() {
			<-done
		}
	}
}

// syslogHandler parses the messages of one goroutine: the UDP loop or one
// TCP connection.
type syslogHandler struct {
	l    *SyslogListener
	cfg  *syslogConfig
	emit input.Emit
	from netip.Addr
	ev   sequence.Event
}

// message parses every line of one message.
func (h *syslogHandler) message(ctx context.Context, msg []byte) {
	h.l.c.messages.Add(1)
	syslogLines(msg, func(line []byte) { h.line(ctx, line) })
}

func (h *syslogHandler) line(ctx context.Context, line []byte) {
	c := &h.l.c
	c.lines.Add(1)
	_, r := h.l.Parser.Parse(line, &h.ev)
	if r != ReasonNone {
		c.skipped[r].Add(1)
		if h.cfg.log.Enabled(ctx, slog.LevelDebug) {
			h.cfg.log.Debug("line is not a knock", "reason", r.String(), "from", h.from, "line", quoteLine(line))
		}
		return
	}
	h.ev.Time = h.cfg.now()
	h.ev.Input = h.l.Name
	h.l.emitMu.Lock()
	defer h.l.emitMu.Unlock()
	if h.emit(&h.ev, input.Wait) {
		c.events.Add(1)
	} else {
		c.dropped.Add(1) // the daemon is stopping
	}
}

// syslogLines calls fn for every line of msg: the pieces between LF or NUL
// bytes, without a trailing CR, empty ones left out. NUL ends lines as it
// ends TCP messages, so that a message yields the same lines whichever
// transport and framing carried it.
func syslogLines(msg []byte, fn func(line []byte)) {
	for len(msg) > 0 {
		end := syslogTerminator(msg)
		line := msg
		if end >= 0 {
			line, msg = msg[:end], msg[end+1:]
		} else {
			msg = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			fn(line)
		}
	}
}

// syslogTerminator returns the index of the first LF or NUL in b, or -1.
func syslogTerminator(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	if lf < 0 {
		lf = len(b)
	}
	if nul := bytes.IndexByte(b[:lf], 0); nul >= 0 {
		return nul
	}
	if lf == len(b) {
		return -1
	}
	return lf
}

// serveUDP reads datagrams until the socket is closed.
func (l *SyslogListener) serveUDP(ctx context.Context, cfg syslogConfig, conn *net.UDPConn, emit input.Emit) error {
	h := &syslogHandler{l: l, cfg: &cfg, emit: emit}
	// One byte more than the limit tells an oversize datagram from one of
	// exactly MaxMessage bytes: the kernel truncates what does not fit.
	buf := make([]byte, cfg.maxMessage+1)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading syslog datagrams: %w", err)
		}
		if !syslogAllowed(cfg.allow, from.Addr()) {
			l.deny(cfg, "udp", from)
			continue
		}
		if n > cfg.maxMessage {
			l.c.oversize.Add(1)
			cfg.log.Debug("dropping oversize syslog datagram", "src", from.Addr(), "port", from.Port(), "max", cfg.maxMessage)
			continue
		}
		h.from = from.Addr()
		h.message(ctx, buf[:n])
	}
}

// deny counts a sender that is not allowed, and warns: it usually means
// that Allow lacks the firewall's address.
func (l *SyslogListener) deny(cfg syslogConfig, network string, from netip.AddrPort) {
	l.c.denied.Add(1)
	l.warnSender(cfg, from, "dropping syslog from a sender not allowed", "network", network)
}

// warnSender logs what was done to a sender at warning level, unless the
// rate limit holds it back; then at debug level. A warning carries the
// number of warnings held back since the last one, so that a flood shows
// as a count.
func (l *SyslogListener) warnSender(cfg syslogConfig, from netip.AddrPort, msg string, args ...any) {
	args = append([]any{"src", from.Addr(), "port", from.Port()}, args...)
	ok, held := l.warns.allow(cfg.now(), from.Addr())
	if !ok {
		cfg.log.Debug(msg, args...)
		return
	}
	if held > 0 {
		args = append(args, "warnings_held_back", held)
	}
	cfg.log.Warn(msg, args...)
}

// syslogWarnLimit is the rate limit of warnSender: each sender at most once
// every syslogWarnEvery, and at most syslogWarnSenders senders within that
// time. Its zero value is ready to use.
type syslogWarnLimit struct {
	mu   sync.Mutex
	last map[netip.Addr]time.Time // when each sender was last warned about
	held uint64                   // warnings held back since the last one given
}

// allow reports whether a warning about src may be logged at now, and how
// many were held back before it.
func (w *syslogWarnLimit) allow(now time.Time, src netip.Addr) (bool, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	src = sequence.NormalizeAddr(src)
	if w.last == nil {
		w.last = make(map[netip.Addr]time.Time)
	}
	recent := func(t time.Time) bool { d := now.Sub(t); return d >= 0 && d < syslogWarnEvery }
	if t, ok := w.last[src]; ok && recent(t) {
		w.held++
		return false, 0
	}
	if len(w.last) >= syslogWarnSenders {
		for a, t := range w.last {
			if !recent(t) {
				delete(w.last, a)
			}
		}
		if len(w.last) >= syslogWarnSenders {
			w.held++
			return false, 0
		}
	}
	w.last[src] = now
	held := w.held
	w.held = 0
	return true, held
}

// syslogSenders counts the open TCP connections of each sender address.
// It holds only senders with a connection open, so it is bounded by
// MaxConns.
type syslogSenders struct {
	mu   sync.Mutex
	open map[netip.Addr]int
}

// add counts a new connection from src unless src has max open already.
func (s *syslogSenders) add(src netip.Addr, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		s.open = make(map[netip.Addr]int)
	}
	if s.open[src] >= max {
		return false
	}
	s.open[src]++
	return true
}

// done uncounts a connection from src.
func (s *syslogSenders) done(src netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[src] <= 1 {
		delete(s.open, src)
		return
	}
	s.open[src]--
}

// serveTCP accepts connections until the listener is closed, serving each
// on a goroutine counted in wg.
func (l *SyslogListener) serveTCP(ctx context.Context, cfg syslogConfig, ln net.Listener, emit input.Emit, wg *sync.WaitGroup) error {
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accepting syslog connections: %w", err)
			}
			// Running out of descriptors or a connection aborted before
			// it was accepted passes; wait a little instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			cfg.log.Warn("accepting a syslog connection failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		from := syslogPeer(conn.RemoteAddr())
		src := sequence.NormalizeAddr(from.Addr())
		// Counted before closing, so that whoever sees the connection
		// closed sees it counted.
		if !syslogAllowed(cfg.allow, src) {
			l.deny(cfg, cfg.streamNetwork(), from)
			conn.Close()
			continue
		}
		if l.c.open.Load() >= int64(cfg.maxConns) {
			l.c.refused.Add(1)
			l.warnSender(cfg, from, "refusing a syslog connection: the listener has as many open as it serves", "max", cfg.maxConns)
			conn.Close()
			continue
		}
		if !l.senders.add(src, cfg.maxPerSrc) {
			l.c.refusedS.Add(1)
			l.warnSender(cfg, from, "refusing a syslog connection: the sender has as many open as one sender may", "max_per_sender", cfg.maxPerSrc)
			conn.Close()
			continue
		}
		// Only this goroutine increments, so the check above holds.
		l.c.open.Add(1)
		wg.Go(func() {
			defer l.c.open.Add(-1)
			defer l.senders.done(src)
			l.serveConn(ctx, cfg, conn, from, emit)
		})
	}
}

// syslogPeer returns a connection's remote address, or the zero value,
// which no prefix contains, for an address that is not IP.
func syslogPeer(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// serveConn reads one TCP connection's messages until the sender closes
// it, its framing breaks, it is too slow or idle, or ctx ends.
func (l *SyslogListener) serveConn(ctx context.Context, cfg syslogConfig, conn net.Conn, from netip.AddrPort, emit input.Emit) {
	// The socket itself is closed, also under TLS: a TLS close would
	// first write an alert, which a sender that reads nothing can delay.
	defer conn.Close()
	// Closing rather than a past read deadline: syslogTimedConn moves the
	// deadline before every read and would undo it.
	defer syslogAfterFunc(ctx, func() { conn.Close() })()

	timed := &syslogTimedConn{Conn: conn, idle: cfg.idle, message: cfg.msgTimeout, now: time.Now}
	var stream io.Reader = timed
	if cfg.tlsListener {
		tc, ok := l.handshake(ctx, cfg, timed, from)
		if !ok {
			return
		}
		// Bytes that TLS had read ahead and decrypts without reading
		// again start a message too.
		stream = syslogMarkReader{tc, timed}
	}

	h := &syslogHandler{l: l, cfg: &cfg, emit: emit, from: from.Addr()}
	// The buffer holds a whole message and the byte after it, as
	// syslogFrames needs, and is at least a page so that reads stay large.
	br := bufio.NewReaderSize(stream, max(cfg.maxMessage+1, 4096))
	oversize := func() {
		l.c.oversize.Add(1)
		cfg.log.Debug("skipping oversize syslog message", "src", from.Addr(), "port", from.Port(), "max", cfg.maxMessage)
	}
	// Between messages the idle limit applies, unless the next message
	// has begun to arrive already.
	boundary := func() { timed.messageDone(br.Buffered() > 0) }
	message := func(msg []byte) { h.message(ctx, msg) }
	err := syslogFrames(br, cfg.maxMessage, message, oversize, boundary)
	switch {
	case ctx.Err() != nil:
	case err == nil:
		cfg.log.Debug("syslog connection closed by the sender", "src", from.Addr(), "port", from.Port())
	case errors.Is(err, errSyslogFraming):
		l.c.malformed.Add(1)
		cfg.log.Debug("closing a syslog connection", "src", from.Addr(), "port", from.Port(), "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded) && timed.inMessage():
		l.c.slow.Add(1)
		l.warnSender(cfg, from, "closing a syslog connection: a message took longer than the time limit", "limit", cfg.msgTimeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.c.idle.Add(1)
		cfg.log.Debug("closing an idle syslog connection", "src", from.Addr(), "port", from.Port(), "idle", cfg.idle)
	default:
		cfg.log.Debug("syslog connection failed", "src", from.Addr(), "port", from.Port(), "err", err)
	}
}

// handshake runs the TLS handshake of a connection with the credentials
// in force, within the message time limit, and reports whether it
// succeeded.
func (l *SyslogListener) handshake(ctx context.Context, cfg syslogConfig, timed *syslogTimedConn, from netip.AddrPort) (*tls.Conn, bool) {
	tc := tls.Server(timed, &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return l.tls.Load().config, nil },
	})
	timed.messageStart()
	err := tc.HandshakeContext(ctx)
	switch {
	case err == nil:
		timed.messageDone(false)
		if peer := tc.ConnectionState().PeerCertificates; len(peer) > 0 {
			cfg.log.Debug("syslog TLS connection", "src", from.Addr(), "port", from.Port(), "client", peer[0].Subject.String())
		}
		return tc, true
	case ctx.Err() != nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.c.slow.Add(1)
		l.warnSender(cfg, from, "closing a syslog connection: the TLS handshake took longer than the time limit", "limit", cfg.msgTimeout)
	default:
		// Logged before it is counted: the count tells tests the line
		// is there.
		l.warnSender(cfg, from, "closing a syslog connection: TLS handshake failed", "err", err)
		l.c.handshake.Add(1)
	}
	return nil, false
}

// syslogTimedConn sets the deadline of every read from a TCP connection:
// between messages a read may wait IdleTimeout, and once a message has
// begun, everything up to its end must arrive within MessageTimeout of its
// first byte, however the sender paces the rest. Below TLS it sees the
// raw bytes, so a sender that dribbles a TLS record is timed as one that
// dribbles a message. It is used by one goroutine only.
type syslogTimedConn struct {
	net.Conn
	idle, message time.Duration
	now           func() time.Time
	started       time.Time // when the message being read began; zero between messages
}

func (c *syslogTimedConn) Read(p []byte) (int, error) {
	deadline := c.now().Add(c.idle)
	if c.inMessage() {
		deadline = c.started.Add(c.message)
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.messageStart()
	}
	return n, err
}

// Write bounds each write, which only TLS makes (its handshake and
// alerts), by the message time limit: a sender that stops reading cannot
// hold the connection that way either.
func (c *syslogTimedConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(c.now().Add(c.message)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// messageStart notes that a message has begun, unless one is under way.
func (c *syslogTimedConn) messageStart() {
	if c.started.IsZero() {
		c.started = c.now()
	}
}

// messageDone notes that a message has been read whole; next reports
// that bytes of the next one are already here, which begins it.
func (c *syslogTimedConn) messageDone(next bool) {
	c.started = time.Time{}
	if next {
		c.messageStart()
	}
}

// inMessage reports whether a message is under way.
func (c *syslogTimedConn) inMessage() bool { return !c.started.IsZero() }

// syslogMarkReader notes the start of a message when bytes arrive from r,
// for bytes that arrive without a read of the connection below.
type syslogMarkReader struct {
	r io.Reader
	c *syslogTimedConn
}

func (m syslogMarkReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		m.c.messageStart()
	}
	return n, err
}

// errSyslogFraming reports a TCP stream that cannot be split into messages.
var errSyslogFraming = errors.New("malformed syslog framing")

// syslogFrames splits the RFC 6587 stream read through br into messages
// and calls frame for each, until the stream ends. br's buffer must hold
// at least maxMsg+1 bytes. The message passed to frame is valid only during
// the call. boundary, if not nil, is called after each message (framed,
// oversize or empty) has been read whole.
//
// Each message's framing is decided by its first byte:
//   - A digit starts octet counting, "MSG-LEN SP MSG": MSG-LEN is 1 to 9
//     digits without a leading zero. Anything else is a bad length prefix.
//   - Any other byte starts non-transparent framing: the message runs to
//     the next LF or NUL, which is dropped. Empty messages are ignored.
//
// A message longer than maxMsg is skipped without being buffered whole
// (its declared octets, or up to the next LF or NUL) and reported by
// calling oversize. An unterminated last message is a message, unless it is
// octet-counted: a stream that ends inside an octet-counted message or its
// length prefix was cut short.
//
// syslogFrames returns nil at the end of the stream, an error wrapping
// errSyslogFraming for a bad length prefix or a cut-short message, after
// which the stream cannot be followed, and any other read error as it is.
func syslogFrames(br *bufio.Reader, maxMsg int, frame func([]byte), oversize, boundary func()) error {
	for {
		b, err := br.Peek(1)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if b[0] >= '0' && b[0] <= '9' {
			err = syslogOctetFrame(br, maxMsg, frame, oversize)
		} else {
			err = syslogLineFrame(br, maxMsg, frame, oversize)
		}
		if err != nil {
			return err
		}
		if boundary != nil {
			boundary()
		}
	}
}

// syslogOctetFrame reads one octet-counted message.
func syslogOctetFrame(br *bufio.Reader, maxMsg int, frame func([]byte), oversize func()) error {
	n, err := syslogOctetCount(br)
	if err != nil {
		return err
	}
	cutShort := func(err error) error {
		if err == io.EOF {
			return fmt.Errorf("%w: stream ended inside a %d-octet message", errSyslogFraming, n)
		}
		return err
	}
	if n > maxMsg {
		oversize()
		if _, err := br.Discard(n); err != nil {
			return cutShort(err)
		}
		return nil
	}
	msg, err := br.Peek(n)
	if err != nil {
		return cutShort(err)
	}
	frame(msg)
	_, _ = br.Discard(n) // buffered: cannot fail
	return nil
}

// syslogOctetCount reads a length prefix and the blank after it.
func syslogOctetCount(br *bufio.Reader) (int, error) {
	n := 0
	for k := 1; ; k++ {
		b, err := br.Peek(k)
		if len(b) < k {
			if err == io.EOF {
				return 0, fmt.Errorf("%w: stream ended inside a length prefix", errSyslogFraming)
			}
			return 0, err
		}
		c := b[k-1]
		switch {
		case c == ' ' && k > 1:
			_, _ = br.Discard(k) // buffered: cannot fail
			return n, nil
		case c >= '0' && c <= '9' && k <= syslogMaxLenDigits && !(k == 1 && c == '0'):
			n = n*10 + int(c-'0')
		default:
			return 0, fmt.Errorf("%w: bad length prefix %q", errSyslogFraming, b)
		}
	}
}

// syslogLineFrame reads one message ended by LF or NUL, or by the end of the
// stream.
func syslogLineFrame(br *bufio.Reader, maxMsg int, frame func([]byte), oversize func()) error {
	scanned := 0 // bytes known to hold no terminator, so a slow sender costs linear time
	for {
		buf, _ := br.Peek(br.Buffered())
		limit := min(len(buf), maxMsg+1)
		if i := syslogTerminator(buf[scanned:limit]); i >= 0 {
			i += scanned
			if i > 0 {
				frame(buf[:i])
			}
			_, _ = br.Discard(i + 1)
			return nil
		}
		scanned = limit
		if len(buf) > maxMsg {
			oversize()
			return syslogSkipLine(br)
		}
		// More bytes are needed; the buffer has room for them since it
		// holds maxMsg+1.
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if err == io.EOF {
				// Peek again: reading may have moved the bytes to the
				// start of the buffer, leaving buf stale.
				buf, _ = br.Peek(br.Buffered())
				frame(buf)
				_, _ = br.Discard(len(buf))
				return nil
			}
			return err
		}
	}
}

// syslogSkipLine discards bytes up to and including the next LF or NUL.
func syslogSkipLine(br *bufio.Reader) error {
	for {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
		buf, _ := br.Peek(br.Buffered())
		if i := syslogTerminator(buf); i >= 0 {
			_, _ = br.Discard(i + 1)
			return nil
		}
		_, _ = br.Discard(len(buf))
	}
}

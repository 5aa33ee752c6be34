package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sony/gobreaker/v2"
)

// ConnectBackoff is how long new connection attempts of a guarded pool fail
// at once after an attempt failed, before one attempt (the probe) may go:
// about 1/ConnectBackoff attempts a second (4) while the server is away, and
// connections again within ConnectBackoff of its return after a restart.
const ConnectBackoff = 250 * time.Millisecond

// ProbeDialTimeout cuts the TCP handshake of an attempt made while attempts
// fail. It is the kernel's initial SYN retransmission timeout (RFC 6298
// §2.1): a SYN not answered by then was lost, as when the server's host or
// the network is gone, and the next probe sends a fresh one instead of
// waiting out connect_timeout. Round trips to the database must stay under it.
const ProbeDialTimeout = time.Second

// DefaultConnectTimeout bounds one connection attempt (dial, TLS, startup
// and authentication) of a guarded pool whose connection string sets no
// connect_timeout. Without a bound, an attempt into a dropped SYN, or to a
// server that accepts and never answers, waits for minutes, holding one of
// the pool's connection slots (and, as the probe, every reconnection) all
// along.
const DefaultConnectTimeout = 5 * time.Second

// ErrReconnecting: a guarded pool refused to start a connection attempt
// because its last attempt failed less than ConnectBackoff ago, or because
// another attempt (the probe) is under way. It is an ErrUnavailable (a 503
// with Retry-After) and costs no round trip.
var ErrReconnecting = errors.Join(ErrUnavailable, errors.New("db: reconnecting: connection attempts fail; one probe every "+ConnectBackoff.String()+" until one succeeds"))

// ErrSelfConnect: the kernel connected a TCP dial to itself. Dialing a local
// port where nothing listens, with that port inside the ephemeral range, can
// pick the same number as the source port (a TCP simultaneous open with
// itself); the socket then holds the port, and the server cannot start on it.
var ErrSelfConnect = errors.New("db: the TCP connection is connected to itself (nothing listens on the server's port)")

// GuardConnects makes the pool built from cfg back off while its server
// cannot be reached (issue #14 item 9: each failing request dialled anew,
// some 235 attempts a second with 8 writers):
//
//   - A failed connection attempt (refused, timed out, the server starting
//     up or refusing the login) opens a circuit breaker (sony/gobreaker):
//     for ConnectBackoff every new attempt fails at once with
//     ErrReconnecting, without a dial; then one attempt, the probe, may go,
//     while the others still fail at once. A probe that connects closes the
//     breaker; one that fails opens it again. Once it is open, one pool
//     slot at most is spent on probing, so the rest answer at once even
//     when the server accepts and never answers (the attempts under way
//     when it opened still run to their end).
//   - Only connection attempts count. A query's error (a unique violation,
//     a statement timeout, a cancelled request) never opens it, and pooled
//     connections keep serving while it is open.
//   - Every attempt is bounded by connect_timeout, DefaultConnectTimeout
//     when the connection string sets none, and so is every dial, those of
//     cancel requests included; while the breaker is not closed a dial is
//     cut after ProbeDialTimeout.
//   - A TCP connection that turns out to be connected to itself is closed
//     at once and fails the attempt (ErrSelfConnect), freeing the port.
//
// Connections come back within ConnectBackoff of the server's return after
// a restart (it refused meanwhile), within ProbeDialTimeout+ConnectBackoff
// when its SYNs were dropped, and within connect_timeout+ConnectBackoff when
// it accepted and never answered.
//
// name labels the pool in log lines (nil log: none). Call it before the
// pool is created; it wraps cfg's BeforeConnect and DialFunc.
func GuardConnects(cfg *pgxpool.Config, name string, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	var downSince atomic.Int64 // unix nanoseconds; for the log
	breaker := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1, // one probe at a time while half-open
		Timeout:     ConnectBackoff,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 1 },
		// The pool closing cancels its attempts: that says nothing of the server.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			switch {
			case from == gobreaker.StateClosed && to == gobreaker.StateOpen:
				downSince.Store(time.Now().UnixNano())
				log.Warn("cannot connect to the database: one probe every "+ConnectBackoff.String()+
					" until one connects; meanwhile requests that need a new connection get 503", "pool", name)
			case to == gobreaker.StateClosed:
				log.Info("connected to the database again", "pool", name,
					"down_for", time.Since(time.Unix(0, downSince.Load())).Round(time.Millisecond).String())
			}
		},
	})
	if dial := cfg.ConnConfig.DialFunc; dial != nil {
		timeout := cfg.ConnConfig.ConnectTimeout
		cfg.ConnConfig.DialFunc = guardDial(dial, func() time.Duration {
			if breaker.State() != gobreaker.StateClosed {
				return min(timeout, ProbeDialTimeout)
			}
			return timeout
		})
	}
	next := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		done, err := breaker.Allow()
		if err != nil {
			return fmt.Errorf("%s pool: %w", name, ErrReconnecting)
		}
		outcome := &connectOutcome{done: done}
		if cc.Tracer == nil {
			cc.Tracer = outcome
		} else {
			cc.Tracer = multitracer.New(cc.Tracer, outcome)
		}
		if next != nil {
			if err := next(ctx, cc); err != nil {
				outcome.report(context.Canceled) // not the server's doing
				return err
			}
		}
		return nil
	}
}

// connectOutcome reports one connection attempt's result to the breaker
// (pgx calls TraceConnectEnd on every path of a connect); as a query tracer
// it does nothing.
type connectOutcome struct {
	once sync.Once
	done func(error)
}

func (o *connectOutcome) report(err error) { o.once.Do(func() { o.done(err) }) }

func (o *connectOutcome) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

func (o *connectOutcome) TraceConnectEnd(_ context.Context, data pgx.TraceConnectEndData) {
	o.report(data.Err)
}

func (o *connectOutcome) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (o *connectOutcome) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// DialFunc is pgconn's dial function type.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// guardDial bounds every dial by timeout(), the cancel requests' too (pgconn
// dials the server again to cancel the statement of a connection that broke,
// and holds the pool's slot until that is done; with no bound a dial into a
// dropped SYN holds it for the 15 s pgconn allows), and refuses a TCP
// connection that is connected to itself.
func guardDial(dial DialFunc, timeout func() time.Duration) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout())
		defer cancel()
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if IsSelfConnected(conn) {
			// An abortive close (RST): a normal one would leave the socket
			// in TIME_WAIT, holding the port for a minute more.
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			conn.Close()
			return nil, fmt.Errorf("dial %s: %w", addr, ErrSelfConnect)
		}
		return conn, nil
	}
}

// IsSelfConnected reports whether a TCP connection's two ends are the same
// address and port.
func IsSelfConnected(conn net.Conn) bool {
	local, ok1 := conn.LocalAddr().(*net.TCPAddr)
	remote, ok2 := conn.RemoteAddr().(*net.TCPAddr)
	return ok1 && ok2 && local.Port == remote.Port && local.IP.Equal(remote.IP)
}

package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bouncer is a PgBouncer in front of a server (transaction pooling unless
// told otherwise), for tests that run rowfence through a pooler.
type Bouncer struct {
	// URL connects through PgBouncer with the backend URL's user and database.
	URL string
	// Version is PgBouncer's, such as "1.18.0".
	Version string
	stop    func()
}

// Stop ends PgBouncer and removes its files.
func (b *Bouncer) Stop() { b.stop() }

// URLFor is URL with another of the bouncer's users (BouncerOptions.Users).
func (b *Bouncer) URLFor(user, password string) string {
	u, err := url.Parse(b.URL)
	if err != nil {
		panic(err) // made by StartPgBouncer
	}
	u.User = url.UserPassword(user, password)
	if password == "" {
		u.User = url.User(user)
	}
	return u.String()
}

// ErrNoPgBouncer is returned when the pgbouncer binary is not installed.
var ErrNoPgBouncer = errors.New("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")

// BouncerOptions configures StartPgBouncerWith.
type BouncerOptions struct {
	// PoolSize is the most server connections per user and database.
	PoolSize int
	// PoolMode is PgBouncer's pool_mode: "transaction" (default), "session"
	// or "statement".
	PoolMode string
	// Users may log in besides the backend URL's user: name -> password
	// (PgBouncer logs in to the server with it).
	Users map[string]string
	// Settings are more [pgbouncer] settings, such as
	// max_prepared_statements (PgBouncer 1.21+).
	Settings map[string]string
}

// StartPgBouncer starts PgBouncer with pool_mode=transaction and at most
// poolSize server connections per user and database, in front of the server
// and database of backend (a URL with a unix socket or TCP host).
func StartPgBouncer(ctx context.Context, backend string, poolSize int) (*Bouncer, error) {
	return StartPgBouncerWith(ctx, backend, BouncerOptions{PoolSize: poolSize})
}

func pgbouncerBinary() (string, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/pgbouncer"); statErr != nil {
			return "", ErrNoPgBouncer
		}
		bin = "/usr/sbin/pgbouncer"
	}
	return bin, nil
}

// PgBouncerVersion is the installed PgBouncer's version, such as "1.18.0".
func PgBouncerVersion() (string, error) {
	bin, err := pgbouncerBinary()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("pgbouncer --version: %w", err)
	}
	// "PgBouncer 1.18.0\nlibevent …"
	first, _, _ := strings.Cut(string(out), "\n")
	if v, ok := strings.CutPrefix(strings.TrimSpace(first), "PgBouncer "); ok {
		return v, nil
	}
	return "", fmt.Errorf("pgbouncer --version: unexpected %q", first)
}

// StartPgBouncerWith starts PgBouncer as opts say in front of the server and
// database of backend (a URL with a unix socket or TCP host).
func StartPgBouncerWith(ctx context.Context, backend string, opts BouncerOptions) (*Bouncer, error) {
	bin, err := pgbouncerBinary()
	if err != nil {
		return nil, err
	}
	version, err := PgBouncerVersion()
	if err != nil {
		return nil, err
	}
	if opts.PoolMode == "" {
		opts.PoolMode = "transaction"
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 2
	}
	cfg, err := pgx.ParseConfig(backend)
	if err != nil {
		return nil, err
	}
	account, err := serverAccount() // PgBouncer, like PostgreSQL, refuses to run as root
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rfbouncer-")
	if err != nil {
		return nil, err
	}
	if err := account.own(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	users := fmt.Sprintf("%s %s\n", quote(cfg.User), quote(cfg.Password))
	for name, password := range opts.Users {
		users += fmt.Sprintf("%s %s\n", quote(name), quote(password))
	}
	var extra strings.Builder
	for k, v := range opts.Settings {
		fmt.Fprintf(&extra, "%s = %s\n", k, v)
	}
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = %s
default_pool_size = %d
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,search_path
logfile = %s
%s`, cfg.Host, cfg.Port, port, filepath.Join(dir, "users.txt"), opts.PoolMode, opts.PoolSize, filepath.Join(dir, "pgbouncer.log"), extra.String())
	for name, body := range map[string]string{"users.txt": users, "pgbouncer.ini": ini} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		if err := account.own(path); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	account.apply(cmd)
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	exited, err := startTied(cmd)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start pgbouncer: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		os.RemoveAll(dir)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(cfg.User, cfg.Password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + cfg.Database,
		RawQuery: "sslmode=disable",
	}
	if cfg.Password == "" {
		u.User = url.User(cfg.User)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			conn.Close(ctx)
			break
		}
		select {
		case exitErr := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("pgbouncer exited (%v):\n%s", exitErr, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			stop()
			return nil, fmt.Errorf("pgbouncer did not accept connections: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Bouncer{URL: u.String(), Version: version, stop: stop}, nil
}

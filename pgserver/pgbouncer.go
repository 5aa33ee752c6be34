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

// Bouncer is a PgBouncer in transaction pooling mode in front of a server,
// for tests that prove the tenant setting survives (only) the transaction.
type Bouncer struct {
	// URL connects through PgBouncer with the backend URL's user and database.
	URL  string
	stop func()
}

// Stop ends PgBouncer and removes its files.
func (b *Bouncer) Stop() { b.stop() }

// ErrNoPgBouncer is returned when the pgbouncer binary is not installed.
var ErrNoPgBouncer = errors.New("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")

// StartPgBouncer starts PgBouncer with pool_mode=transaction and at most
// poolSize server connections per user and database, in front of the server
// and database of backend (a URL with a unix socket or TCP host).
func StartPgBouncer(ctx context.Context, backend string, poolSize int) (*Bouncer, error) {
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/pgbouncer"); statErr != nil {
			return nil, ErrNoPgBouncer
		}
		bin = "/usr/sbin/pgbouncer"
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
	ini := fmt.Sprintf(`[databases]
* = host=%s port=%d
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
default_pool_size = %d
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,search_path
logfile = %s
`, cfg.Host, cfg.Port, port, filepath.Join(dir, "users.txt"), poolSize, filepath.Join(dir, "pgbouncer.log"))
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
	return &Bouncer{URL: u.String(), stop: stop}, nil
}

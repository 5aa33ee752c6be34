package pgserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// findBinDir returns a directory holding initdb and postgres: pg_config's,
// else the newest /usr/lib/postgresql/*/bin.
func findBinDir() (string, error) {
	var candidates []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(globbed, func(i, j int) bool { return majorOf(globbed[i]) > majorOf(globbed[j]) })
	candidates = append(candidates, globbed...)
	for _, dir := range candidates {
		if isFile(filepath.Join(dir, "initdb")) && isFile(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries found")
}

func majorOf(bindir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return n
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// runAs is the account the server runs as: initdb and postgres refuse root,
// so as root they run as the postgres system user. nil means the current user.
type runAs struct {
	uid, gid int
}

func serverAccount() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, errors.New("running as root, and PostgreSQL refuses to run as root, but there is no postgres system user to run it as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &runAs{uid: uid, gid: gid}, nil
}

func (a *runAs) apply(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if a != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}
	}
}

// own makes path belong to the server account.
func (a *runAs) own(path string) error {
	if a == nil {
		return nil
	}
	return os.Chown(path, a.uid, a.gid)
}

// canReach reports whether the server account may search every directory
// from / down to dir. A folder under a 0700 home fails this.
func (a *runAs) canReach(dir string) bool {
	if a == nil {
		return true
	}
	for p := dir; ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return false
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		mode := st.Mode().Perm()
		switch {
		case int(sys.Uid) == a.uid:
			if mode&0o100 == 0 {
				return false
			}
		case int(sys.Gid) == a.gid:
			if mode&0o010 == 0 {
				return false
			}
		default:
			if mode&0o001 == 0 {
				return false
			}
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// startLocal runs a private cluster. With dataDir empty the cluster is
// temporary and tuned for tests (no fsync); otherwise it is kept in dataDir
// and reused, even while another process of ours serves it. With ownOnly, a
// dataDir holding anything but a cluster created here is refused.
func startLocal(ctx context.Context, bindir, dataDir string, ownOnly bool, log *slog.Logger, settings ...string) (*Server, error) {
	log = orDiscard(log)
	account, err := serverAccount()
	if err != nil {
		return nil, err
	}
	ephemeral := dataDir == ""
	var base string
	if ephemeral {
		if base, err = os.MkdirTemp("", "rowfence-pg-"); err != nil {
			return nil, err
		}
		if err := account.own(base); err != nil {
			return nil, err
		}
		dataDir = filepath.Join(base, "data")
	} else {
		if dataDir, err = filepath.Abs(dataDir); err != nil {
			return nil, err
		}
		if !account.canReach(filepath.Dir(dataDir)) {
			sum := sha256.Sum256([]byte(dataDir))
			fallback := filepath.Join(os.TempDir(), "rowfence-pgdata-"+hex.EncodeToString(sum[:4]))
			log.Info("the postgres user cannot reach the project folder; keeping the cluster in the temp dir instead",
				"wanted", dataDir, "using", fallback)
			dataDir = fallback
		}
		base = dataDir
		if ownOnly {
			if err := checkOwn(dataDir); err != nil {
				return nil, err
			}
		}
		if s := findRunning(dataDir); s != nil {
			log.Info("using the local PostgreSQL cluster that is already running", "data", dataDir)
			return s, nil
		}
	}
	cleanup := func() {
		if ephemeral {
			os.RemoveAll(base)
		}
	}

	if !isFile(filepath.Join(dataDir, "PG_VERSION")) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			cleanup()
			return nil, err
		}
		if err := account.own(dataDir); err != nil {
			cleanup()
			return nil, err
		}
		log.Info("creating a local PostgreSQL cluster", "data", dataDir, "bin", bindir)
		args := []string{"-D", dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C",
			"--auth-local=trust", "--auth-host=scram-sha-256"}
		if ephemeral {
			args = append(args, "--no-sync")
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"), args...)
		account.apply(cmd)
		if out, err := cmd.CombinedOutput(); err != nil {
			cleanup()
			return nil, fmt.Errorf("initdb: %w\n%s", err, out)
		}
		if !ephemeral {
			marker := filepath.Join(dataDir, MarkerFile)
			note := []byte("This cluster was created by rowfence's pgserver (make run, make bench).\n")
			if err := os.WriteFile(marker, note, 0o600); err != nil {
				return nil, err
			}
			if err := account.own(marker); err != nil {
				return nil, err
			}
		}
	}

	// The socket directory is private (0700, the server's) and short, since
	// socket paths are limited to about 100 bytes.
	sockDir, err := os.MkdirTemp("", "rfpg-")
	if err != nil {
		cleanup()
		return nil, err
	}
	if err := account.own(sockDir); err != nil {
		cleanup()
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s, err := launch(ctx, bindir, dataDir, sockDir, base, ephemeral, account, log, settings)
		if err == nil {
			return s, nil
		}
		if attempt >= 3 || !errors.Is(err, errPortTaken) {
			os.RemoveAll(sockDir)
			cleanup()
			return nil, err
		}
	}
}

var errPortTaken = errors.New("port taken")

// checkOwn refuses a data directory that exists, is not empty and lacks the
// marker startLocal writes after its own initdb: a cluster or files of
// someone else's. Missing or empty is fine: startLocal will create it.
func checkOwn(dataDir string) error {
	entries, err := os.ReadDir(dataDir)
	switch {
	case errors.Is(err, os.ErrNotExist) || (err == nil && len(entries) == 0):
		return nil
	case err != nil:
		return fmt.Errorf("%w: %s: %v", ErrForeignCluster, dataDir, err)
	case !isFile(filepath.Join(dataDir, MarkerFile)):
		return fmt.Errorf("%w: %s", ErrForeignCluster, dataDir)
	}
	return nil
}

func launch(ctx context.Context, bindir, dataDir, sockDir, base string, ephemeral bool, account *runAs, log *slog.Logger, settings []string) (*Server, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", dataDir, "-p", strconv.Itoa(port), "-k", sockDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, setting := range settings {
		args = append(args, "-c", setting)
	}
	// The log goes with the cluster: base is removed with a temporary one.
	logPath := filepath.Join(base, "postgres.log")
	if !ephemeral {
		logPath = filepath.Join(dataDir, "server.log")
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	p := &process{bindir: bindir, args: args, account: account, logFile: logFile, logPath: logPath}
	connString := fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(sockDir), port)
	if err := p.start(ctx, connString); err != nil {
		logFile.Close()
		return nil, err
	}
	log.Info("local PostgreSQL cluster running", "data", dataDir, "port", port, "socket_dir", sockDir)

	return &Server{
		URL:    connString,
		Source: "local",
		stop: func(ctx context.Context) error {
			defer logFile.Close()
			defer os.RemoveAll(sockDir)
			if ephemeral {
				defer os.RemoveAll(base)
			}
			// SIGINT is the fast shutdown: it rolls back open work and
			// checkpoints, so a kept cluster starts cleanly next time.
			return p.stop(ctx, syscall.SIGINT)
		},
		bounce: func(ctx context.Context, whileDown func()) error {
			// SIGQUIT is the immediate shutdown: no checkpoint, every
			// connection cut, recovery from WAL at the next start, as after
			// a crash.
			if err := p.stop(ctx, syscall.SIGQUIT); err != nil {
				return err
			}
			whileDown()
			return p.start(ctx, connString)
		},
	}, nil
}

// process is one postgres server process, which can be started again with
// the same arguments (data directory, port, socket directory).
type process struct {
	bindir  string
	args    []string
	account *runAs
	logFile *os.File
	logPath string

	cmd    *exec.Cmd
	exited <-chan error
}

func (p *process) start(ctx context.Context, connString string) error {
	cmd := exec.Command(filepath.Join(p.bindir, "postgres"), p.args...)
	p.account.apply(cmd)
	// If this process dies, the kernel stops the server (SIGQUIT: immediate
	// shutdown), so no cluster outlives a crashed test run.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.Stdout, cmd.Stderr = p.logFile, p.logFile
	exited, err := startTied(cmd)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	p.cmd, p.exited = cmd, exited
	ready := make(chan error, 1)
	readyCtx, cancelReady := context.WithCancel(ctx)
	defer cancelReady()
	go func() { ready <- waitReady(readyCtx, connString, 60*time.Second) }()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			<-exited
			return fmt.Errorf("postgres did not become ready: %w\n%s", err, tail(p.logPath))
		}
	case err := <-exited:
		cancelReady()
		out := tail(p.logPath)
		if strings.Contains(out, "could not bind") || strings.Contains(out, "Address already in use") {
			return errPortTaken
		}
		return fmt.Errorf("postgres exited at start (%v):\n%s", err, out)
	}
	return nil
}

// stop signals the server and waits for it; if it has not stopped after
// 30 seconds (or when ctx ends), it is stopped immediately.
func (p *process) stop(ctx context.Context, sig syscall.Signal) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	<-p.exited
	return errors.New("postgres did not stop in time; stopped it immediately")
}

// findRunning returns the server already running on dataDir, if any, from its
// postmaster.pid (line 1 pid, 4 port, 5 socket directory).
func findRunning(dataDir string) *Server {
	raw, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return nil
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) < 5 {
		return nil
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	sockDir := strings.TrimSpace(lines[4])
	if err1 != nil || err2 != nil || sockDir == "" {
		return nil
	}
	if syscall.Kill(pid, 0) != nil {
		return nil
	}
	connString := fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(sockDir), port)
	if waitReady(context.Background(), connString, 5*time.Second) != nil {
		return nil
	}
	return &Server{URL: connString, Source: "local"}
}

// FreePort returns a TCP port on 127.0.0.1 that is free now and lies outside
// the kernel's ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range
// on Linux), for a server of ours to listen on. A port inside that range can
// be taken while the server is down by any process's outgoing connection,
// and by a client's own dial to it: with nothing listening, the kernel may
// pick that very number as the dial's source port and connect the socket to
// itself (a TCP simultaneous open), after which the server cannot bind it.
func FreePort() (int, error) {
	lo, hi := ephemeralRange()
	for range 100 {
		port := 1024 + mathrand.IntN(65535-1024+1)
		if port >= lo && port <= hi {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free TCP port outside the ephemeral range %d-%d", lo, hi)
}

// ephemeralRange is the kernel's range of source ports for outgoing
// connections. Where it cannot be read (not Linux), it assumes the widest of
// the common defaults: Linux's 32768-60999 and IANA's 49152-65535.
func ephemeralRange() (lo, hi int) {
	lo, hi = 32768, 65535
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(raw))
	if len(f) != 2 {
		return lo, hi
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || h < l || h > 65535 {
		return lo, hi
	}
	return l, h
}

// tail returns the last lines of a log file for an error message.
func tail(path string) string {
	raw, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// startTied starts cmd, whose SysProcAttr.Pdeathsig is set, and returns a
// channel that receives its exit. Pdeathsig fires when the thread that
// started the child exits, so the starting goroutine keeps its thread for as
// long as the child runs: the child dies with this process, never before.
func startTied(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

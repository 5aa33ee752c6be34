package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// containerImage is a recent PostgreSQL major version.
const containerImage = "postgres:17-alpine"

// dockerAnswers reports whether a Docker daemon answers within a short time.
// Where none is configured it returns at once, without asking testcontainers.
func dockerAnswers(ctx context.Context) (ok bool) {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return false
		}
	}
	defer func() {
		// testcontainers panics in some set-ups without a daemon.
		if recover() != nil {
			ok = false
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	provider, err := testcontainers.ProviderDocker.GetProvider()
	if err != nil {
		return false
	}
	return provider.Health(ctx) == nil
}

func startContainer(ctx context.Context, log *slog.Logger) (*Server, error) {
	log = orDiscard(log)
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	password := hex.EncodeToString(secret)
	log.Info("starting PostgreSQL in Docker", "image", containerImage)
	c, err := tcpostgres.Run(ctx, containerImage,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword(password),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		if c != nil {
			_ = testcontainers.TerminateContainer(c)
		}
		return nil, err
	}
	url, err := c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(c)
		return nil, fmt.Errorf("container connection string: %w", err)
	}
	return &Server{
		URL:    url,
		Source: "docker",
		stop: func(context.Context) error {
			return testcontainers.TerminateContainer(c)
		},
	}, nil
}

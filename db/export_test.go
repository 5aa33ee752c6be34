package db

import "context"

// GooseUpOnly applies goose's migrations and not River's, so that a test can
// start several migrations from the step that used to run outside the lock.
func (m *Migrator) GooseUpOnly(ctx context.Context) error {
	_, err := m.provider.Up(ctx)
	return err
}

// MapError is mapError, for the tests of what it makes of errors that pgx
// returns outside the boundary (a raw pool's). Code outside tests has no way
// to it: its errors are mapped at the boundary (errors.go).
func MapError(err error) error { return mapError(err) }

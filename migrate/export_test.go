package migrate

import "context"

// GooseUpOnly applies goose's migrations and not River's, so that a test can
// start several migrations from the step that used to run outside the lock.
func (m *Migrator) GooseUpOnly(ctx context.Context) error {
	_, err := m.provider.Up(ctx)
	return err
}

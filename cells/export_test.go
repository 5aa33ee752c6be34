package cells

import "context"

// FreezeSteps exposes the freeze's steps to the tests: make the triggers
// unfrozen, freeze (the function raises), and wait for the writers in
// flight.
func (m *Move) FreezeSteps(ctx context.Context) (prepare, freeze, wait func() error, err error) {
	tables, err := tenantTables(ctx, m.Source)
	if err != nil {
		return nil, nil, nil, err
	}
	prepare = func() error { return m.prepareFreeze(ctx, tables) }
	freeze = func() error { _, err := m.Source.Exec(ctx, m.freezeFunction(true)); return err }
	wait = func() error { return m.waitForWriters(ctx, tables) }
	return prepare, freeze, wait, nil
}

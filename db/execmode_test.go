package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/pgtest"
)

// ExecModes are pgx's five ways of sending a statement. A connection pooler
// decides which of them can work (README, "Connection poolers"): every
// statement must behave the same in all of them.
var ExecModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
}

// sampleID is the id of every seeded row (tenant, user, product, API key,
// export, platform key), so that any uuid argument finds a row.
var sampleID = uuid.MustParse("5a000000-0000-4000-8000-000000000001")

// sampleBytes is both valid JSON and 32 bytes long (the length the hash
// columns require), so a []byte argument is a valid value for jsonb and bytea
// columns alike: whether it arrives as what it is depends on the mode.
var sampleBytes = []byte(`{"k":"012345678901234567890123"}`)

// newID and newText are the id and the unique text (slug, email) of rows
// that *Create and *Import queries insert, so that they succeed.
var newID = uuid.MustParse("5a000000-0000-4000-8000-000000000002")

const newText = "yyy"

// sample returns a value of type t for the Go parameter's name, or field's
// name qualified by its struct's (APIKeyCreateParams.ID).
func sample(t reflect.Type, name string) reflect.Value {
	v := reflect.New(t).Elem()
	inserts := strings.Contains(name, "CreateParams.") || strings.Contains(name, "ImportParams.")
	switch {
	case t == reflect.TypeFor[uuid.UUID]() && inserts && (strings.HasSuffix(name, ".ID") || strings.HasSuffix(name, ".Id")):
		v.Set(reflect.ValueOf(newID))
	case t == reflect.TypeFor[uuid.UUID]():
		v.Set(reflect.ValueOf(sampleID))
	case t == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2000, 1, 2, 3, 4, 5, 6000, time.UTC)))
	case t.Kind() == reflect.Pointer:
		v.Set(sample(t.Elem(), name).Addr())
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		v.SetBytes(append([]byte(nil), sampleBytes...))
	case t.Kind() == reflect.Slice:
		v.Set(reflect.Append(v, sample(t.Elem(), strings.TrimSuffix(name, "s"))))
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			v.Field(i).Set(sample(t.Field(i).Type, t.Name()+"."+t.Field(i).Name))
		}
	case t.Kind() == reflect.String:
		switch {
		case strings.HasSuffix(name, "Role"):
			v.SetString("admin")
		case strings.HasSuffix(name, "At"): // nullable times that travel as text
			v.SetString("2000-01-02T03:04:05Z")
		case inserts && (strings.HasSuffix(name, ".Slug") || strings.HasSuffix(name, ".Email")):
			v.SetString(newText)
		case name == "ExportFailParams.Status":
			v.SetString("failed")
		case name == "TenantUpdateParams.Status":
			v.SetString("suspended")
		default:
			v.SetString("xxx") // a valid slug, email, name and idempotency key
		}
	case t.Kind() == reflect.Int32 && strings.HasSuffix(name, ".Status"):
		v.SetInt(201)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		v.SetInt(7)
	case t.Kind() == reflect.Float64:
		v.SetFloat(7.5)
	case t.Kind() == reflect.Bool:
		v.SetBool(true)
	default:
		panic(fmt.Sprintf("sample: no value for %s (%s)", name, t))
	}
	return v
}

// seedSamples inserts one row with sampleID into every table a query reads.
func seedSamples(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	tx, err := admin.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	id := sampleID.String()
	for _, stmt := range []string{
		`insert into tenants (id, slug, name) values ($1, 'xxx', 'xxx')`,
		`select set_config('app.tenant_id', $1::text, true)`,
		`insert into users (id, name, email, role) values ($1, 'xxx', 'xxx', 'admin')`,
		`insert into products (id, name, description, price) values ($1, 'xxx', 'xxx', 7)`,
		`insert into api_keys (id, user_id, name, role, secret_hash, expires_at)
		 values ($1, $1, 'xxx', 'admin', sha256('x'), now() + interval '1 day')`,
		`insert into exports (id, requested_by, status, counts, content) values ($1, $1, 'running', '{"users": 1}', 'xxx')`,
		`insert into idempotency_keys (key, request_hash, status, response_headers, response_body)
		 values ('xxx', sha256('x'), 201, '{"Location": ["/x"]}', 'xxx')`,
		`insert into platform_keys (id, name, secret_hash) values ($1, 'xxx', sha256('x'))`,
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = append(args, id)
		}
		_, err := tx.Exec(ctx, stmt, args...)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, tx.Commit(ctx))
}

// outcome is what one call of a query did: its SQLSTATE or error, or its
// results (normalized).
func outcome(results []reflect.Value, since time.Time) string {
	err, _ := results[len(results)-1].Interface().(error)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		return "SQLSTATE " + pgErr.Code
	case errors.Is(err, pgx.ErrNoRows):
		return "no rows"
	case err != nil:
		return "error: " + err.Error()
	}
	if len(results) == 1 {
		return "ok"
	}
	out, jerr := json.Marshal(normalized(results[0], since).Interface())
	if jerr != nil {
		return "unmarshalable: " + jerr.Error()
	}
	return string(out)
}

// normalized copies v with every time.Time in it in UTC (the text formats
// carry the session's zone, the binary ones Go's local zone), and what each
// call makes anew (now() at or after since, a new row's random id) replaced
// by a fixed value: these differ from call to call whatever the mode.
func normalized(v reflect.Value, since time.Time) reflect.Value {
	inUTC := func(v reflect.Value) reflect.Value { return normalized(v, since) }
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		tm := v.Interface().(time.Time).UTC()
		if !tm.Before(since) {
			tm = time.Unix(0, 0).UTC()
		}
		return reflect.ValueOf(tm)
	case v.Type() == reflect.TypeFor[uuid.UUID]():
		if v.Interface().(uuid.UUID) != sampleID {
			return reflect.ValueOf(uuid.Max)
		}
		return v
	case v.Kind() == reflect.Pointer && !v.IsNil():
		p := reflect.New(v.Type().Elem())
		p.Elem().Set(inUTC(v.Elem()))
		return p
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() != reflect.Uint8 && !v.IsNil():
		s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			s.Index(i).Set(inUTC(v.Index(i)))
		}
		return s
	case v.Kind() == reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		for i := range v.NumField() {
			c.Field(i).Set(inUTC(v.Field(i)))
		}
		return c
	}
	return v
}

var errRollBack = errors.New("roll back")

// Every sqlc query (found by reflection, so a new one is covered as soon as it
// is generated) gives the same answer in every pgx exec mode: the same rows
// or the same SQLSTATE. Each runs through db.Tx, the request path, in a
// transaction rolled back afterwards, against the same seeded rows. As a
// superuser: this is about how values travel, not about the policies.
func TestEveryQueryInEveryExecMode(t *testing.T) {
	t.Parallel()
	tdb := setup(t, 1).tdb
	seedSamples(t, tdb.AdminPool(t))
	everyQuery(t, tdb, tdb.AdminURL, ExecModes)
}

// everyQuery runs every query in each of modes through connString (a
// superuser's, to tdb's database) and compares the answers with those of
// cache_statement mode straight to the server.
func everyQuery(t *testing.T, tdb *pgtest.DB, connString string, modes []pgx.QueryExecMode) {
	t.Helper()
	ctx := context.Background()
	admin := tdb.AdminPool(t)
	var since time.Time // after the seeded rows' times
	require.NoError(t, admin.QueryRow(ctx, "select now()").Scan(&since))
	open := func(connString string, mode pgx.QueryExecMode) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(connString)
		require.NoError(t, err)
		cfg.MaxConns = 1
		cfg.ConnConfig.DefaultQueryExecMode = mode
		pool, err := db.Open(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		return pool
	}
	reference := open(tdb.AdminURL, pgx.QueryExecModeCacheStatement)
	pools := map[pgx.QueryExecMode]*pgxpool.Pool{}
	for _, mode := range modes {
		pools[mode] = open(connString, mode)
	}
	call := func(pool *pgxpool.Pool, m reflect.Method, args []reflect.Value) string {
		var got string
		err := db.Tx(ctx, pool, db.Scope{TenantID: sampleID, Role: dbtype.RoleAdmin}, func(q *dbsqlc.Queries) error {
			got = outcome(m.Func.Call(append([]reflect.Value{reflect.ValueOf(q)}, args...)), since)
			return errRollBack
		})
		require.ErrorIs(t, err, errRollBack, m.Name)
		return got
	}
	qt := reflect.TypeFor[*dbsqlc.Queries]()
	ran, succeeded := 0, 0
	for i := range qt.NumMethod() {
		m := qt.Method(i)
		if m.Name == "WithTx" {
			continue
		}
		args := []reflect.Value{reflect.ValueOf(ctx)}
		for a := 2; a < m.Type.NumIn(); a++ { // after the receiver and ctx
			args = append(args, sample(m.Type.In(a), m.Type.In(a).Name()))
		}
		ran++
		want := call(reference, m, args)
		if !strings.HasPrefix(want, "SQLSTATE") && !strings.HasPrefix(want, "error") {
			succeeded++
		} else {
			t.Logf("%s: %s", m.Name, want)
		}
		for _, mode := range modes {
			// A few statements read the cluster (ReachCapabilities lists the
			// databases the role may connect to), which parallel tests change:
			// a difference counts only when it holds on two more tries, each
			// with a fresh reference. A mode's encoding bug is deterministic.
			got, ref := call(pools[mode], m, args), want
			for try := 0; got != ref && try < 2; try++ {
				ref, got = call(reference, m, args), call(pools[mode], m, args)
			}
			if got != ref {
				t.Errorf("%s in %s mode:\n got %s\nwant %s (as in %s mode)", m.Name, mode, got, ref, pgx.QueryExecModeCacheStatement)
			}
		}
	}
	t.Logf("%d queries in %d modes; %d succeeded in the reference mode", ran, len(modes), succeeded)
	// The samples must reach most statements' rows, or the comparison is hollow.
	require.Greater(t, ran, 50)
	require.Greater(t, succeeded, ran*3/4)
}

package lifecycle_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rowfence/rowfence/db"
	"github.com/rowfence/rowfence/db/dbsqlc"
	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/lifecycle"
	"github.com/rowfence/rowfence/pgtest"
)

// streamRows is the size of the tenant the streaming tests export: large
// enough that an export held in memory (about 22 MB of JSON Lines, several
// times that as Go values) stands far above the bound, small enough for make
// test. ROWFENCE_STREAM_ROWS raises it (bench/ runs 1M and more).
func streamRows(t *testing.T) int {
	if s := os.Getenv("ROWFENCE_STREAM_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		return n
	}
	return 100_000
}

// heapBound is what an export, download or import may add to the heap: a
// few chunks and one import batch, whatever the tenant's size.
const heapBound = 16 << 20

// peakHeap runs fn while sampling the live heap every few milliseconds, and
// returns how far it rose above where it was before fn. The collector runs
// often meanwhile (GOGC=10), so the samples are close to what is live.
func peakHeap(t *testing.T, fn func()) uint64 {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}()
	start := time.Now()
	fn()
	close(stop)
	wg.Wait()
	t.Logf("%s: heap +%.1f MiB", time.Since(start).Round(time.Millisecond), float64(peak-base)/(1<<20))
	return peak - base
}

// bigTenant onboards slug and gives it n products and n/100 users, built in
// SQL by the superuser (one INSERT … SELECT each).
func bigTenant(t *testing.T, owner, super *pgxpool.Pool, slug string, n int) dbsqlc.Tenant {
	t.Helper()
	ctx := context.Background()
	o, err := lifecycle.Onboard(ctx, owner, lifecycle.Tenant{Slug: slug, Name: slug, AdminEmail: "admin@" + slug + ".example"})
	require.NoError(t, err)
	_, err = super.Exec(ctx, `insert into products (tenant_id, name, description, price, created_at, updated_at)
		select $1, 'product ' || g, 'the "description" of product ' || g || E'\n\\ ünïcode', g,
		       now() - g * interval '1 millisecond', now()
		from generate_series(1, $2::int) g`, o.Tenant.ID, n)
	require.NoError(t, err)
	_, err = super.Exec(ctx, `insert into users (tenant_id, name, email, role, external_id)
		select $1, 'user ' || g, 'u' || g || '@example.com', 'viewer', case when g % 2 = 0 then 'sub|' || g end
		from generate_series(1, $2::int) g`, o.Tenant.ID, max(1, n/100))
	require.NoError(t, err)
	_, err = super.Exec(ctx, "analyze products, users")
	require.NoError(t, err)
	return o.Tenant
}

// fingerprint is every row of a tenant, as the superuser reads them, in a
// form that does not depend on the tenant: ids, texts, prices, timestamps.
func fingerprint(t *testing.T, super *pgxpool.Pool, tenant uuid.UUID) string {
	t.Helper()
	var users, products, keys string
	require.NoError(t, super.QueryRow(context.Background(), `select
		(select md5(coalesce(string_agg(concat_ws('|', id, name, email, role, external_id, created_at, updated_at), ',' order by id), '')) from users where tenant_id = $1),
		(select md5(coalesce(string_agg(concat_ws('|', id, name, description, price, created_at, updated_at), ',' order by id), '')) from products where tenant_id = $1),
		(select md5(coalesce(string_agg(concat_ws('|', id, user_id, name, role, secret_hash, created_at, expires_at, last_used_at, revoked_at), ',' order by id), '')) from api_keys where tenant_id = $1)`,
		tenant).Scan(&users, &products, &keys))
	return users + products + keys
}

// An export of a large tenant is written in bounded chunks while its rows
// stream, read back chunk by chunk, and imported line by line: the heap
// never holds the tenant (issue 16, item 3). Before, ExportTenant read every
// row into slices first (a million products took the server to 3 GiB) and
// Import parsed the whole file before writing.
func TestExportStreamsInBoundedChunks(t *testing.T) {
	// Not parallel: the heap samples must be this test's alone.
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, super, platform := tdb.OwnerPool(t), tdb.AdminPool(t), tdb.PlatformPool(t)
	n := streamRows(t)
	big := bigTenant(t, owner, super, "big", n)

	// The bare stream: constant memory into a writer that keeps nothing.
	h := sha256.New()
	var counts map[string]int
	grew := peakHeap(t, func() {
		var err error
		counts, err = lifecycle.ExportTenant(ctx, owner, big, h)
		require.NoError(t, err)
	})
	require.Equal(t, n, counts["products"])
	require.Less(t, grew, uint64(heapBound), "exporting %d products grew the heap by %d MiB", n, grew>>20)

	// Into chunks, as the export job does (as rowfence_platform).
	sc := db.Scope{TenantID: big.ID, Role: dbtype.RoleAdmin}
	// Requested as the API does (the app role), written as the job does.
	row, err := db.One(ctx, tdb.AppPool(t, 2), sc, func(q *dbsqlc.Queries) (dbsqlc.ExportCreateRow, error) {
		return q.ExportCreate(ctx, dbsqlc.ExportCreateParams{RequestedBy: uuid.New(), RetentionSeconds: 3600, MaxCount: 10, MaxBytes: 1 << 40})
	})
	require.NoError(t, err)
	e := row.ID
	var written lifecycle.Written
	grew = peakHeap(t, func() {
		written, err = lifecycle.WriteExport(ctx, platform, big, e, 0)
		require.NoError(t, err)
	})
	require.Less(t, grew, uint64(heapBound), "writing the chunks grew the heap by %d MiB", grew>>20)
	require.Greater(t, written.Chunks, int32(1), "more than one chunk")
	var chunks, maxLen, short int64
	require.NoError(t, super.QueryRow(ctx, `select count(*), max(octet_length(data)),
		count(*) filter (where octet_length(data) < $2 and seq < (select max(seq) from export_chunks where export_id = $1))
		from export_chunks where export_id = $1`, e, lifecycle.ChunkSize).Scan(&chunks, &maxLen, &short))
	require.EqualValues(t, written.Chunks, chunks)
	require.LessOrEqual(t, maxLen, int64(lifecycle.ChunkSize), "no chunk exceeds the bound")
	require.Zero(t, short, "every chunk but the last is full")

	// Read back chunk by chunk: the same bytes, in bounded memory.
	h2 := sha256.New()
	var read int64
	grew = peakHeap(t, func() {
		read, err = io.Copy(h2, lifecycle.NewChunkReader(ctx, db.Scoped(platform, sc), e, written.Chunks))
		require.NoError(t, err)
	})
	require.Equal(t, written.Bytes, read)
	require.Less(t, grew, uint64(heapBound), "reading the chunks grew the heap by %d MiB", grew>>20)

	// Imported from the chunks as they stream, into a new tenant: the same
	// rows (ids and timestamps included), external_id too.
	want := fingerprint(t, super, big.ID)
	var imp lifecycle.Imported
	grew = peakHeap(t, func() {
		imp, err = lifecycle.Import(ctx, owner, "big-copy", "", lifecycle.NewChunkReader(ctx, db.Scoped(platform, sc), e, written.Chunks))
		require.NoError(t, err)
	})
	require.Less(t, grew, uint64(heapBound), "importing grew the heap by %d MiB", grew>>20)
	require.Equal(t, n, imp.Counts["products"])
	require.Equal(t, want[:64], fingerprint(t, super, imp.Tenant.ID)[:64], "users and products come back equal")
	var withExternal int
	require.NoError(t, super.QueryRow(ctx, "select count(external_id) from users where tenant_id = $1", imp.Tenant.ID).Scan(&withExternal))
	require.Equal(t, max(1, n/100)/2, withExternal, "external_id travels")
}

// Import stays all or nothing while it streams: a file cut short after
// thousands of rows, or one whose checksum fails at its very end, writes
// nothing, though its rows were sent before the end was read.
func TestStreamingImportIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tdb := pgtest.New(t)
	owner, super := tdb.OwnerPool(t), tdb.AdminPool(t)
	big := bigTenant(t, owner, super, "acme", 20_000)
	var buf bytes.Buffer
	_, err := lifecycle.ExportTenant(ctx, owner, big, &buf)
	require.NoError(t, err)
	raw := buf.Bytes()
	before := counts(t, super)
	altered := bytes.Replace(raw, []byte("product 19999\""), []byte("product 19998\""), 1)
	require.NotEqual(t, raw, altered)
	for name, file := range map[string][]byte{
		"cut after most rows":  raw[:len(raw)*9/10],
		"altered near the end": altered,
	} {
		_, err := lifecycle.Import(ctx, owner, "restored", "", bytes.NewReader(file))
		require.ErrorIs(t, err, lifecycle.ErrBadExport, name)
	}
	require.Equal(t, before, counts(t, super), "nothing was written")
	_, err = lifecycle.Import(ctx, owner, "restored", "", bytes.NewReader(raw))
	require.NoError(t, err, "the intact file imports")
}

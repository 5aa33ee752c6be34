package httpapi

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// checkAppender compares v's own JSON with encoding/json's, byte for byte:
// ETags hash these bytes, and clients see them. Where the appender declines,
// encoding/json must fail too (the appender never hides an error or invents
// output encoding/json would not write).
func checkAppender(t *testing.T, v jsonAppender) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, ok := v.appendJSON([]byte("prefix"))
	if !ok {
		require.Error(t, werr, "the appender declined a value encoding/json encodes: %s", want)
		return
	}
	require.NoError(t, werr, "the appender wrote %s where encoding/json fails", got)
	require.Equal(t, "prefix"+string(want), string(got))
	viaMarshal, err := marshalJSON(nil, v)
	require.NoError(t, err)
	require.Equal(t, string(want)+"\n", string(viaMarshal))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	names := []string{"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnl\nCR\rbs\bff\f",
		"\x00\x01\x1f\x7f", "é ü 日本語 🚀", "\u2028\u2029", "bad \xff\xfe utf-8 \xe2\x82", "\ufffd", "\U0010FFFF"}
	for _, n := range names {
		checkAppender(t, productJSON{ID: uuid.New(), TenantID: uuid.New(), Name: n, Description: n + n,
			Price: -42, CreatedAt: at, UpdatedAt: at.In(time.FixedZone("", 5*3600+30*60))})
	}
	for _, tm := range []time.Time{{}, time.Unix(0, 0).UTC(), at.Truncate(time.Second), at.Add(123456789),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), at.In(time.FixedZone("", -(23*3600 + 59*60))), at.In(time.FixedZone("", 24*3600)),
		at.In(time.FixedZone("", 90))} {
		checkAppender(t, productJSON{CreatedAt: tm, UpdatedAt: at, Price: math.MinInt64})
		checkAppender(t, productJSON{CreatedAt: at, UpdatedAt: tm, Price: math.MaxInt64})
	}
	cursor := "abc<>&\u2028"
	one := productJSON{ID: uuid.New(), Name: "one", CreatedAt: at, UpdatedAt: at}
	for _, page := range []listPage[productJSON]{
		{}, {Items: []productJSON{}}, {Items: []productJSON{one}}, {Items: []productJSON{one, one}, NextCursor: &cursor},
		{Items: []productJSON{one, {CreatedAt: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	} {
		checkAppender(t, page)
	}
	// A page of items that do not write themselves is left to encoding/json.
	_, ok := listPage[UserJSON]{Items: []UserJSON{{}}}.appendJSON(nil)
	require.False(t, ok)
}

func FuzzAppendJSONMatchesEncodingJSON(f *testing.F) {
	f.Add("name", "<desc>", int64(1), int64(1767225600), int64(5), 0, "cursor")
	f.Add("\xff\u2028", "\x00", int64(-1), int64(-62135596801), int64(999999999), -3600, "")
	f.Fuzz(func(t *testing.T, name, desc string, price, sec, nsec int64, offset int, cursor string) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("", offset%(30*3600)))
		p := productJSON{ID: uuid.NewSHA1(uuid.Nil, []byte(name)), TenantID: uuid.NewMD5(uuid.Nil, []byte(desc)),
			Name: name, Description: desc, Price: price, CreatedAt: tm, UpdatedAt: tm.UTC()}
		checkAppender(t, p)
		checkAppender(t, listPage[productJSON]{Items: []productJSON{p, p}, NextCursor: &cursor})
	})
}

// The access log's duration_ms (appendJSONMillis) is what encoding/json,
// slog's JSON handler and zerolog write for float64(d.Microseconds())/1000,
// byte for byte: whole, sub-millisecond, trailing-zero and huge durations,
// sub-microsecond parts dropped, and negative ones (never measured, still
// right).
func TestJSONMillisIsTheFloats(t *testing.T) {
	t.Parallel()
	check := func(d time.Duration) {
		want, err := json.Marshal(float64(d.Microseconds()) / 1000)
		require.NoError(t, err)
		require.Equal(t, "x"+string(want), string(appendJSONMillis([]byte("x"), d)), "%d ns", int64(d))
	}
	for us := range int64(200_000) {
		check(time.Duration(us) * time.Microsecond)
	}
	for _, d := range []time.Duration{999, 1000, 1999, 10*time.Second + 5, time.Hour, 1<<53*time.Microsecond + 123, math.MaxInt64, -1500 * time.Microsecond, -time.Microsecond, math.MinInt64} {
		check(d)
	}
	for x := uint64(1); x < math.MaxInt64/3; x = x*3 + 7 {
		check(time.Duration(x))
	}
}

package httpapi

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The hot representations (products, list pages) write their own JSON:
// encoding/json's reflection and its per-field allocations (every time and
// UUID is a MarshalJSON/MarshalText call that allocates) were 14% of a list
// request's CPU in a profile of serve, and writing it here gained 4-17% list
// throughput per wrk round (bench/RESULTS.md, HTTP level). The bytes
// are exactly those encoding/json writes for the same value, which
// FuzzAppendJSONMatchesEncodingJSON checks; ETags are hashes of these bytes,
// so they must not depend on which encoder ran.

// jsonAppender is a value that appends its own JSON encoding to b. ok=false
// means it cannot (a time outside what RFC 3339 represents) and encoding/json
// must decide, which reports the error it always did.
type jsonAppender interface {
	appendJSON(b []byte) (out []byte, ok bool)
}

// marshalJSON appends v's JSON and a newline to b, as json.Encoder.Encode
// writes them.
func marshalJSON(b []byte, v any) ([]byte, error) {
	if a, ok := v.(jsonAppender); ok {
		if out, ok := a.appendJSON(b); ok {
			return append(out, '\n'), nil
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(append(b, raw...), '\n'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string (HTML-safe
// escaping on, its default): <, > and & as \u00XX, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONUUID appends u as its quoted canonical text.
func appendJSONUUID(b []byte, u uuid.UUID) []byte {
	b = append(b, '"')
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return append(b, '"')
}

// appendJSONMillis appends d in milliseconds, microseconds kept, as
// encoding/json writes float64(d.Microseconds())/1000 (and so slog's JSON
// handler and zerolog, the access log's duration_ms), without
// strconv.AppendFloat's search for the shortest decimal: for a count of
// microseconds that decimal is the count's own digits with the point put
// back, the fraction's trailing zeros dropped (a float64 tells apart
// decimals a thousandth apart up to 2^53 thousandths, beyond any
// time.Duration).
func appendJSONMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us < 0 {
		b, us = append(b, '-'), -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	if frac := us % 1000; frac != 0 {
		digits := [3]byte{'0' + byte(frac/100), '0' + byte(frac/10%10), '0' + byte(frac%10)}
		n := len(digits)
		for digits[n-1] == '0' {
			n--
		}
		b = append(append(b, '.'), digits[:n]...)
	}
	return b
}

// appendJSONTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds); ok=false where MarshalJSON fails: a year outside 0-9999 or a
// zone offset of 24 hours or more.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

func (p productJSON) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"id":`...)
	b = appendJSONUUID(b, p.ID)
	b = append(b, `,"tenant_id":`...)
	b = appendJSONUUID(b, p.TenantID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, p.Description)
	b = append(b, `,"price":`...)
	b = strconv.AppendInt(b, p.Price, 10)
	b = append(b, `,"created_at":`...)
	b, ok := appendJSONTime(b, p.CreatedAt)
	if !ok {
		return b, false
	}
	b = append(b, `,"updated_at":`...)
	if b, ok = appendJSONTime(b, p.UpdatedAt); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendJSON writes the page when its items write themselves.
func (p listPage[R]) appendJSON(b []byte) ([]byte, bool) {
	if p.Items == nil {
		b = append(b, `{"items":null`...)
	} else {
		b = append(b, `{"items":[`...)
		for i := range p.Items {
			// A pointer fits in the interface: no copy of the item escapes.
			a, ok := any(&p.Items[i]).(jsonAppender)
			if !ok {
				return b, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = a.appendJSON(b); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"next_cursor":`...)
	if p.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *p.NextCursor)
	}
	return append(b, '}'), true
}

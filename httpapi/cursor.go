package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Cursors are opaque to clients: a keyset position (created_at, id, and a
// sorted list's sort key) signed with HMAC-SHA256 over the tenant and the
// collection, which names the list with its sort and filter. A cursor from
// another tenant, list, sort or filter, another server key, or one that was
// altered fails to verify and is a 400; it never reaches the database. There
// is no cursor for the first page: the request omits ?cursor= (an empty one
// is a 400), and the last page answers "next_cursor": null.

const cursorVersion = 1

// cursorLen: version (1) + created_at in µs (8) + id (16) + MAC (16). A
// sorted list's cursor (version 2) also carries its sort key after the id.
const cursorLen = 1 + 8 + 16 + 16

const (
	cursorVersionKeyed = 2
	maxCursorKey       = 1024 // bytes: a 200-character name in UTF-8, or an email
)

var errBadCursor = errors.New("cursor is malformed, altered, or from another tenant or list")

type position struct {
	// CreatedAt is the time of the list's order: created_at, or updated_at
	// in an ?updated_since= list.
	CreatedAt time.Time
	ID        uuid.UUID
	// Key is the sort key of a sorted list (a name, an email, a price).
	Key string
}

type cursorCodec struct {
	key []byte
	// macs keeps keyed HMACs between requests (newCursorCodec): every list
	// page with a next one signs a cursor, and a new HMAC is half a dozen
	// allocations. nil: a new one per cursor.
	macs *sync.Pool
}

func newCursorCodec(key []byte) cursorCodec {
	return cursorCodec{key: key, macs: &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

func (c cursorCodec) mac(tenant uuid.UUID, collection string, payload []byte) []byte {
	var m hash.Hash
	if c.macs != nil {
		m = c.macs.Get().(hash.Hash)
		m.Reset()
		defer c.macs.Put(m)
	} else {
		m = hmac.New(sha256.New, c.key)
	}
	m.Write([]byte("rowfence cursor\x00"))
	m.Write([]byte(collection))
	m.Write([]byte{0})
	m.Write(tenant[:])
	m.Write(payload)
	return m.Sum(nil)[:16]
}

func (c cursorCodec) encode(tenant uuid.UUID, collection string, p position) string {
	buf := make([]byte, 0, cursorLen+len(p.Key))
	version := byte(cursorVersion)
	if p.Key != "" {
		version = cursorVersionKeyed
	}
	buf = append(buf, version)
	buf = binary.BigEndian.AppendUint64(buf, uint64(p.CreatedAt.UnixMicro()))
	buf = append(buf, p.ID[:]...)
	buf = append(buf, p.Key...)
	buf = append(buf, c.mac(tenant, collection, buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func (c cursorCodec) decode(tenant uuid.UUID, collection, s string) (position, error) {
	if len(s) < base64.RawURLEncoding.EncodedLen(cursorLen) || len(s) > base64.RawURLEncoding.EncodedLen(cursorLen+maxCursorKey) {
		return position{}, errBadCursor
	}
	// encoding/base64 skips '\r' and '\n' even in Strict mode, so a cursor
	// with line breaks in it would decode like the one the server wrote:
	// only the bytes the server writes are a cursor (FuzzCursorDecode).
	if strings.ContainsAny(s, "\r\n") {
		return position{}, errBadCursor
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) < cursorLen ||
		!(raw[0] == cursorVersion && len(raw) == cursorLen || raw[0] == cursorVersionKeyed && len(raw) > cursorLen) {
		return position{}, errBadCursor
	}
	payload, sum := raw[:len(raw)-16], raw[len(raw)-16:]
	if !hmac.Equal(sum, c.mac(tenant, collection, payload)) {
		return position{}, errBadCursor
	}
	var id uuid.UUID
	copy(id[:], payload[9:25])
	micros := int64(binary.BigEndian.Uint64(payload[1:9]))
	return position{CreatedAt: time.UnixMicro(micros).UTC(), ID: id, Key: string(payload[25:])}, nil
}

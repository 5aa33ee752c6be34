package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Cursors are opaque to clients: a keyset position (created_at, id) signed
// with HMAC-SHA256 over the tenant and the collection. A cursor from another
// tenant, another collection, another server key, or one that was altered
// fails to verify and is a 400; it never reaches the database.

const cursorVersion = 1

// cursorLen: version (1) + created_at in µs (8) + id (16) + MAC (16).
const cursorLen = 1 + 8 + 16 + 16

var errBadCursor = errors.New("cursor is malformed, altered, or from another tenant or list")

type position struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

type cursorCodec struct {
	key []byte
}

func (c cursorCodec) mac(tenant uuid.UUID, collection string, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("rowfence cursor\x00"))
	m.Write([]byte(collection))
	m.Write([]byte{0})
	m.Write(tenant[:])
	m.Write(payload)
	return m.Sum(nil)[:16]
}

func (c cursorCodec) encode(tenant uuid.UUID, collection string, p position) string {
	buf := make([]byte, 0, cursorLen)
	buf = append(buf, cursorVersion)
	buf = binary.BigEndian.AppendUint64(buf, uint64(p.CreatedAt.UnixMicro()))
	buf = append(buf, p.ID[:]...)
	buf = append(buf, c.mac(tenant, collection, buf)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

func (c cursorCodec) decode(tenant uuid.UUID, collection, s string) (position, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(cursorLen) {
		return position{}, errBadCursor
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != cursorLen || raw[0] != cursorVersion {
		return position{}, errBadCursor
	}
	payload, sum := raw[:cursorLen-16], raw[cursorLen-16:]
	if !hmac.Equal(sum, c.mac(tenant, collection, payload)) {
		return position{}, errBadCursor
	}
	var id uuid.UUID
	copy(id[:], payload[9:25])
	micros := int64(binary.BigEndian.Uint64(payload[1:9]))
	return position{CreatedAt: time.UnixMicro(micros).UTC(), ID: id}, nil
}

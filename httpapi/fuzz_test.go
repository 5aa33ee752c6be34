package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Cursor decoding must never panic, and only a cursor this server signed for
// this tenant and list may decode.
func FuzzCursorDecode(f *testing.F) {
	codec := cursorCodec{key: []byte(strings.Repeat("k", 32))}
	tenant := uuid.MustParse("a0000000-0000-4000-8000-000000000001")
	valid := codec.encode(tenant, "products", position{CreatedAt: time.UnixMicro(1700000000000000).UTC(), ID: uuid.New()})
	for _, seed := range []string{valid, "", "A", strings.Repeat("A", len(valid)), valid + "=", valid[:len(valid)-1] + "B"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := codec.decode(tenant, "products", s)
		if err != nil {
			return
		}
		if again := codec.encode(tenant, "products", p); again != s {
			t.Fatalf("decoded a cursor the server would not have written: %q (re-encodes to %q)", s, again)
		}
		if _, err := codec.decode(uuid.New(), "products", s); err == nil {
			t.Fatalf("a cursor decoded for another tenant: %q", s)
		}
		if _, err := codec.decode(tenant, "users", s); err == nil {
			t.Fatalf("a cursor decoded for another list: %q", s)
		}
	})
}

// Body decoding answers every input with a clean result or a 4xx
// problem+json, never a panic or a 5xx.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{`{"name":"a","price":1}`, `{}`, `[]`, `null`, `{"name":"\u0000","price":-1}`,
		`{"name":"a","price":1e400}`, "{\"name\":\"\xff\"}", `{"name":"a","price":1}{}`, `{"description":null}`,
		`{"price":9007199254740992}`, `{"name":{"x":1}}`, `"str"`, `{"name":"a","tenant_id":"x"}`} {
		f.Add(seed, "application/json")
	}
	f.Add(`{"price":5}`, "application/merge-patch+json")
	f.Add(`{"price":5}`, "text/plain")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		check := func(name string, ok bool, rec *httptest.ResponseRecorder) {
			if ok {
				if rec.Body.Len() != 0 {
					t.Fatalf("%s: accepted and answered", name)
				}
				return
			}
			if rec.Code < 400 || rec.Code >= 500 {
				t.Fatalf("%s: status %d for %q (%s)", name, rec.Code, body, contentType)
			}
			if rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s: not problem+json", name)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code {
				t.Fatalf("%s: bad problem body %q", name, rec.Body.String())
			}
		}
		newReq := func() *http.Request {
			r := httptest.NewRequest("POST", "/v1/products", bytes.NewReader([]byte(body)))
			r.Header.Set("Content-Type", contentType)
			return r
		}
		rec := httptest.NewRecorder()
		_, ok := decodeValid[productCreateBody](rec, newReq(), "application/json")
		check("product create", ok, rec)
		rec = httptest.NewRecorder()
		_, ok = decodeValid[productPatchBody](rec, newReq(), "application/json", "application/merge-patch+json")
		check("product patch", ok, rec)
		rec = httptest.NewRecorder()
		_, ok = decodeValid[userCreateBody](rec, newReq(), "application/json")
		check("user create", ok, rec)
		rec = httptest.NewRecorder()
		_, ok = decodeValid[userPatchBody](rec, newReq(), "application/json")
		check("user patch", ok, rec)
	})
}

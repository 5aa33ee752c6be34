package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"

	"github.com/rowfence/rowfence/textrule"
)

// Cursor decoding must never panic, and only a cursor this server signed for
// this tenant and list may decode.
func FuzzCursorDecode(f *testing.F) {
	codec := newCursorCodec([]byte(strings.Repeat("k", 32)))
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

// The input rules at the decoder, for any text in a text field: either it
// is taken exactly as the client wrote it (the JSON string's value), passes
// textrule's rules for the field, and is written back by the answers'
// encoder so that a strict decoder reads the same bytes; or it is refused
// with a 4xx problem, one that names the field whenever the text is its
// field's whole value. (TestInputRulesProperty checks the same through
// PostgreSQL.)
func FuzzTextFieldRoundTrip(f *testing.F) {
	for _, seed := range []string{`ok\ud800`, `ad\u200bmin`, "ad\u200bmin", `\u0000`, "\xff", "\u0085", `a","price":2,"x":"`,
		`I \u2764\ufe0f NY`, "Grüße 🚀", `\udc00\ud800`, "line\nbreak", `a\`, "x\u202e", "a@b.example", `\u0061@b.example`} {
		for field := range uint8(4) {
			f.Add(seed, field)
		}
	}
	type fieldCase struct {
		name  string
		rules textrule.Field
		body  func(literal string) string
		value func(w http.ResponseWriter, r *http.Request) (string, bool)
	}
	fields := []fieldCase{
		{"name", textrule.ProductName, func(l string) string { return `{"name":` + l + `,"price":1}` },
			func(w http.ResponseWriter, r *http.Request) (string, bool) {
				b, ok := decodeValid[productCreateBody](w, r, "application/json")
				if !ok {
					return "", false
				}
				return *b.Name, true
			}},
		{"description", textrule.ProductDescription, func(l string) string { return `{"description":` + l + `}` },
			func(w http.ResponseWriter, r *http.Request) (string, bool) {
				b, ok := decodeValid[productPatchBody](w, r, "application/json")
				return b.Description.Value, ok
			}},
		{"email", textrule.UserEmail, func(l string) string { return `{"name":"u","email":` + l + `}` },
			func(w http.ResponseWriter, r *http.Request) (string, bool) {
				b, ok := decodeValid[userCreateBody](w, r, "application/json")
				if !ok {
					return "", false
				}
				return *b.Email, true
			}},
		{"name", textrule.UserName, func(l string) string { return `{"name":` + l + `}` },
			func(w http.ResponseWriter, r *http.Request) (string, bool) {
				b, ok := decodeValid[userPatchBody](w, r, "application/json")
				return b.Name.Value, ok
			}},
	}
	f.Fuzz(func(t *testing.T, text string, which uint8) {
		fc := fields[int(which)%len(fields)]
		literal := `"` + text + `"`
		// Is the literal one JSON string, and what does it hold?
		dec := jsontext.NewDecoder(strings.NewReader(literal))
		tok, err := dec.ReadToken()
		oneString := err == nil && tok.Kind() == '"' && dec.InputOffset() == int64(len(literal))
		want := ""
		if oneString {
			want = tok.String()
		}
		r := httptest.NewRequest("POST", "/v1/x", strings.NewReader(fc.body(literal)))
		r.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		got, ok := fc.value(rec, r)
		if ok {
			if err := fc.rules.Check(got); err != nil {
				t.Fatalf("%s %+q: accepted %+q, which the rules refuse: %v", fc.name, text, got, err)
			}
			if oneString && got != want {
				t.Fatalf("%s %+q: accepted as %+q, not as sent (%+q)", fc.name, text, got, want)
			}
			if !oneString && !strings.ContainsAny(text, `"\`) {
				t.Fatalf("%s %+q: accepted as %+q, but it is no JSON string", fc.name, text, got)
			}
			out, err := marshalJSON(nil, productJSON{Name: got})
			if err != nil {
				t.Fatal(err)
			}
			var back struct {
				Name string `json:"name"`
			}
			if err := jsonv2.Unmarshal(out, &back, jsonv2.RejectUnknownMembers(false)); err != nil || back.Name != got {
				t.Fatalf("%s %+q: answered as %s, which reads back as %+q (%v)", fc.name, text, out, back.Name, err)
			}
			return
		}
		if rec.Code < 400 || rec.Code > 499 || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %+q: refused with %d %s", fc.name, text, rec.Code, rec.Body)
		}
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code {
			t.Fatalf("%s %+q: bad problem body %q", fc.name, text, rec.Body)
		}
		if oneString && fc.rules.Check(want) == nil {
			t.Fatalf("%s %+q: the rules accept %+q, yet refused: %s", fc.name, text, want, rec.Body)
		}
		if oneString || !strings.ContainsAny(text, `"\`) {
			named := false
			for _, e := range p.Errors {
				named = named || e.Field == fc.name
			}
			if !named {
				t.Fatalf("%s %+q: the problem does not name the field: %s", fc.name, text, rec.Body)
			}
		}
	})
}

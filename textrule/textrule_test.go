package textrule_test

import (
	stdjson "encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json"

	"github.com/rowfence/rowfence/textrule"
)

func TestRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		kind  textrule.Kind
		s     string
		valid bool
	}{
		// Every kind: UTF-8, no controls, no noncharacters.
		{textrule.Label, "Grüße 🚀 é", true},
		{textrule.Label, "ok\xff", false},
		{textrule.Label, "ok\xed\xa0\x80", false}, // a surrogate encoded in UTF-8
		{textrule.Label, "nul\x00byte", false},
		{textrule.Label, "bell\a", false},
		{textrule.Label, "c1\u0085", false},
		{textrule.Label, "del\u007f", false},
		{textrule.Label, "tab\there", false},
		{textrule.Label, "a\ufdd0", false},
		{textrule.Label, "a\uffff", false},
		{textrule.Label, "a\U0010FFFF", false},
		{textrule.Label, "line\u2028sep", false},
		// Labels: no invisible or bidi formatting characters...
		{textrule.Label, "ad\u200bmin", false},       // zero width space
		{textrule.Label, "admin\u202e", false},       // right-to-left override
		{textrule.Label, "\u2066admin\u2069", false}, // isolates
		{textrule.Label, "admin\u200e", false},       // left-to-right mark
		{textrule.Label, "\ufeffadmin", false},       // byte order mark
		{textrule.Label, "ad\u00admin", false},       // soft hyphen
		{textrule.Label, "\u3164", false},            // Hangul filler
		{textrule.Label, "a\U000E0041", false},       // tag
		{textrule.Label, "a\ufe00", false},           // variation selector 1
		// ...except what real names need, in context.
		{textrule.Label, "می\u200cخواهم", true},     // ZWNJ in Persian
		{textrule.Label, "👩\u200d💻", true},          // ZWJ emoji sequence
		{textrule.Label, "I \u2764\ufe0f NY", true}, // emoji presentation
		{textrule.Label, "\u200dadmin", false},
		{textrule.Label, "admin\u200c", false},
		{textrule.Label, "a \u200d b", false},
		{textrule.Label, "a\u200d\u200db", false},
		{textrule.Label, "\ufe0fadmin", false},
		// Prose: lines, tabs and formatting characters are fine.
		{textrule.Prose, "line1\nline2\r\n\tindented", true},
		{textrule.Prose, "עברית \u200f(1)", true},
		{textrule.Prose, "nul\x00", false},
		{textrule.Prose, "c1\u009b", false},
		{textrule.Prose, "\ufffe", false},
		// Emails: ASCII mailboxes.
		{textrule.Email, "ann@example.com", true},
		{textrule.Email, "ANN.o'Neil+tag@sub.Example-1.com", true},
		{textrule.Email, "a@b.c", true},
		{textrule.Email, "ad\u200bmin@acme.example", false},
		{textrule.Email, "admin\u202e@acme.example", false},
		{textrule.Email, "admin\u0085@acme.example", false},
		{textrule.Email, "\u0430dmin@acme.example", false}, // Cyrillic a
		{textrule.Email, "admin@acme.ex\u0430mple", false},
		{textrule.Email, "a\x00@x.example", false},
		{textrule.Email, "Ann <a@example.com>", false},
		{textrule.Email, `"a b"@example.com`, false},
		{textrule.Email, "a@[127.0.0.1]", false},
		{textrule.Email, "a@127.0.0.1", false},
		{textrule.Email, "a@localhost", false},
		{textrule.Email, "a..b@example.com", false},
		{textrule.Email, ".a@example.com", false},
		{textrule.Email, "a@-x.example", false},
		{textrule.Email, "a@x..example", false},
		{textrule.Email, "a@b@example.com", false},
		{textrule.Email, strings.Repeat("l", 65) + "@example.com", false},
		{textrule.Email, "not-an-email", false},
		// Tokens: visible ASCII.
		{textrule.Token, "6f1c0d5e-order-7", true},
		{textrule.Token, "has space", false},
		{textrule.Token, "caf\u00e9", false},
	}
	for _, c := range cases {
		err := textrule.Check(c.kind, c.s)
		if c.valid && err != nil || !c.valid && err == nil {
			t.Errorf("Check(%d, %+q) = %v, want valid %v", c.kind, c.s, err, c.valid)
		}
	}

	require := func(f textrule.Field, s, want string) {
		t.Helper()
		err := f.Check(s)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%+v.Check(%+q) = %v, want %q", f, s, err, want)
		}
	}
	require(textrule.ProductName, "  ", "must not be blank")
	require(textrule.ProductName, strings.Repeat("é", 200), "")
	require(textrule.ProductName, strings.Repeat("é", 201), "must be 1 to 200 characters")
	require(textrule.APIKeyName, "", "")
	require(textrule.ProductDescription, "", "")
	require(textrule.IdempotencyKey, strings.Repeat("k", 256), "must be 1 to 255 visible ASCII characters")
	require(textrule.UserEmail, "ad\u200bmin@acme.example", "U+200B")
	require(textrule.ProductName, "a\u0085", "U+0085")
}

// Whatever the rules accept survives the trip through JSON, as the API's
// answers encode it and its strict decoder reads it, byte for byte; and the
// kinds nest: an email is a valid label, a label is valid prose.
func FuzzRules(f *testing.F) {
	for _, s := range []string{"Grüße 🚀", "a\u200db", "ok\xed\xa0\x80", "x\u2028", "a@b.example", "I \u2764\ufe0f",
		"\u202e", "line\nline", "\x00", "\u0085", "<&>", "\u2029", "\ufeff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		label, prose, email := textrule.Check(textrule.Label, s), textrule.Check(textrule.Prose, s), textrule.Check(textrule.Email, s)
		if email == nil && label != nil {
			t.Fatalf("%+q: a valid email but not a valid label: %v", s, label)
		}
		if label == nil && prose != nil {
			t.Fatalf("%+q: a valid label but not valid prose: %v", s, prose)
		}
		if prose != nil {
			return
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			t.Fatalf("%+q: accepted, but PostgreSQL could not store it as it is", s)
		}
		encoded, err := stdjson.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		if err := json.Unmarshal(encoded, &back); err != nil || back != s {
			t.Fatalf("%+q: accepted, but reads back as %+q (%v)", s, back, err)
		}
	})
}

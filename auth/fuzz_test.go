package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzParseAPIKey: any input either is refused or is a key that prints back
// exactly as it was given (one spelling per key), and never panics.
func FuzzParseAPIKey(f *testing.F) {
	k, _ := NewAPIKey(uuid.New())
	f.Add(k.String())
	f.Add("rfk_")
	f.Add(strings.ToUpper(k.String()))
	f.Add(k.String()[:100] + "\x00" + k.String()[101:])
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAPIKey(s)
		if err != nil {
			return
		}
		if got.String() != s {
			t.Fatalf("ParseAPIKey(%q) accepted a second spelling of %q", s, got.String())
		}
		if got.TenantID == uuid.Nil || got.ID == uuid.Nil {
			t.Fatalf("ParseAPIKey(%q) accepted a nil id", s)
		}
	})
}

// FuzzBearerCredential: the credential extracted is never empty and never
// carries the scheme or leading spaces.
func FuzzBearerCredential(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x", "Basic abc", "", "Bearer", "Bearer \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		cred, err := BearerCredential([]string{header})
		if err != nil {
			return
		}
		if cred == "" || strings.HasPrefix(cred, " ") || !strings.HasSuffix(header, cred) {
			t.Fatalf("BearerCredential(%q) = %q", header, cred)
		}
	})
}

// FuzzJWTVerify: made-up tokens are refused, whatever their shape; only the
// seed signed with the secret passes.
func FuzzJWTVerify(f *testing.F) {
	v, err := newJWTVerifier(JWTConfig{HMACSecret: []byte(strings.Repeat("s", 32)), Issuer: "i", Audience: "a"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.x")
	f.Add("a.b.c.d")
	f.Add("....")
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := v.verify(context.Background(), raw); err == nil {
			t.Fatalf("verify(%q) accepted a token nobody signed", raw)
		}
	})
}

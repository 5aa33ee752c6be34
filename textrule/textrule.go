// Package textrule is the one set of rules for every text rowfence takes in:
// JSON bodies, query strings, headers, path values and the import files of
// `rowfence tenant import`. Every entry point checks its texts here before
// any SQL runs, so that a value is refused the same way wherever it enters,
// and whatever is accepted is stored and read back byte for byte.
//
// Every text, whatever its kind:
//   - is valid UTF-8 (RFC 3629), so it has no unpaired surrogates (the
//     strict JSON decoder also refuses \uD800-style escapes of one, RFC 8259
//     section 8.2; RFC 7493 section 2.1);
//   - has no control characters: C0 (U+0000-U+001F, NUL included, which
//     PostgreSQL cannot store in text), DEL and C1 (U+007F-U+009F), except
//     tab, line feed and carriage return in Prose;
//   - has no Unicode noncharacters (U+FDD0-U+FDEF and U+xFFFE, U+xFFFF: not
//     for interchange, Unicode section 23.7).
//
// On top of that, per kind:
//   - Label, a one-line name people tell things apart by (a user's, a
//     product's, a tenant's or a key's name; the ?q= prefix): no line or
//     paragraph separators, and no invisible or bidirectional formatting
//     characters: the format characters (Cf: the bidi embeddings, overrides,
//     isolates and marks, U+200B zero width space, U+2060 word joiner,
//     U+FEFF, soft hyphen, tags…), the other default-ignorable code points
//     (Hangul fillers U+115F, U+1160, U+3164, U+FFA0, U+034F…) and the
//     variation selectors. They render as nothing, or reorder the text
//     around them, so they make a name look like another one or like
//     nothing (Unicode TR36 section 2.3, TR39 section 3.1; RFC 8264
//     section 9.2 disallows them in every PRECIS class). Three exceptions
//     keep real names writable, as RFC 8264's CONTEXTJ rule and emoji need:
//     U+200C ZWNJ and U+200D ZWJ between two visible characters (Persian,
//     Indic scripts, emoji sequences), and U+FE0E/U+FE0F right after a
//     visible character (text or emoji presentation, as in "❤️"). Names are
//     not unique, so a name that looks like another one impersonates
//     nobody that an identical name would not.
//   - Prose, free text that may span lines (a product's description):
//     tabs and line breaks are allowed, and so are the formatting
//     characters, which right-to-left and Indic prose needs; prose
//     identifies nothing.
//   - Email, an identifier unique per tenant: an ASCII address, the
//     Mailbox of RFC 5321 section 4.1.2 without quoted local parts or
//     address literals (dot-atoms of RFC 5322 atext, at most 64 octets
//     before the @; a host name of LDH labels with a top-level label that
//     is not all digits, RFC 3696 section 2), 254 octets in all (RFC 3696
//     erratum 1690). Internationalized addresses (RFC 6531) are refused:
//     their mixed scripts make addresses that look identical but differ
//     (TR39 section 5), which a per-tenant unique column cannot tell apart;
//     an IDN domain is written in its xn-- form (RFC 5890).
//   - Token, a protocol value (an Idempotency-Key): visible ASCII, U+0021
//     to U+007E.
package textrule

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what a text is for; it decides the rules beyond the common ones.
type Kind uint8

const (
	// Label is a one-line name people tell things apart by.
	Label Kind = iota + 1
	// Prose is free text that may span lines.
	Prose
	// Email is an email address, an identifier.
	Email
	// Token is a protocol value of visible ASCII.
	Token
)

// Field is the rules of one field: its kind and its length in characters
// (code points, as PostgreSQL's char_length counts them).
type Field struct {
	Kind     Kind
	Min, Max int
}

// The fields rowfence takes in. The lengths are also the tables' CHECK
// constraints (sql/migrations/00002_tenancy.sql, 00003_users_products.sql,
// 00004_auth.sql).
var (
	ProductName        = Field{Label, 1, 200}
	ProductDescription = Field{Prose, 0, 10000}
	UserName           = Field{Label, 1, 200}
	UserEmail          = Field{Email, 3, 254}
	TenantName         = Field{Label, 1, 200}
	APIKeyName         = Field{Label, 0, 200}
	// SearchPrefix is a list's ?q=, compared with names.
	SearchPrefix = Field{Label, 1, 200}
	// IdempotencyKey is the Idempotency-Key header.
	IdempotencyKey = Field{Token, 1, 255}
	// ExternalID is a user's subject at an identity provider: at most 255
	// ASCII characters (OpenID Connect Core 1.0, section 2, sub), visible
	// ones only (sql/migrations/00017_users_external_id.sql).
	ExternalID = Field{Token, 1, 255}
)

// Check reports what is wrong with s as a value of f: nil, or an error whose
// text completes a sentence that starts with the field's name, such as
// "must not contain control characters (U+0007)".
func (f Field) Check(s string) error {
	if err := Check(f.Kind, s); err != nil {
		return err
	}
	n := utf8.RuneCountInString(s)
	switch {
	case f.Min > 0 && f.Kind != Token && strings.TrimSpace(s) == "":
		return errors.New("must not be blank")
	case n < f.Min || n > f.Max:
		if f.Kind == Token {
			return fmt.Errorf("must be %d to %d visible ASCII characters", f.Min, f.Max)
		}
		return fmt.Errorf("must be %d to %d characters", f.Min, f.Max)
	}
	return nil
}

// Check applies the character rules of kind k to s (not the lengths).
func Check(k Kind, s string) error {
	if !utf8.ValidString(s) {
		return errors.New("must be valid UTF-8")
	}
	switch k {
	case Token:
		for i := 0; i < len(s); i++ {
			if s[i] < 0x21 || s[i] > 0x7e {
				return fmt.Errorf("must be visible ASCII characters only (%s)", codePoint(rune(s[i])))
			}
		}
		return nil
	case Email:
		return checkEmail(s)
	}
	var prev rune = -1 // the previous character; -1 at the start
	for i, r := range s {
		if err := common(k, r); err != nil {
			return err
		}
		if k != Label {
			prev = r
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("must be a single line (%s)", codePoint(r))
		}
		if invisible(r) {
			ok := false
			switch r {
			case '\u200c', '\u200d': // ZWNJ, ZWJ: between two visible characters
				next, _ := utf8.DecodeRuneInString(s[i+utf8.RuneLen(r):])
				ok = visible(prev) && i+utf8.RuneLen(r) < len(s) && visible(next)
			case '\ufe0e', '\ufe0f': // text or emoji presentation of what precedes
				ok = visible(prev)
			}
			if !ok {
				return fmt.Errorf("must not contain invisible or bidirectional formatting characters (%s)", codePoint(r))
			}
		}
		prev = r
	}
	return nil
}

// common is the rule for every kind of text, one character at a time.
func common(k Kind, r rune) error {
	switch {
	case r < 0x20 || r >= 0x7f && r <= 0x9f:
		if k == Prose && (r == '\t' || r == '\n' || r == '\r') {
			return nil
		}
		return fmt.Errorf("must not contain control characters (%s)", codePoint(r))
	case Noncharacter(r):
		return fmt.Errorf("must not contain Unicode noncharacters (%s)", codePoint(r))
	}
	return nil
}

// Noncharacter reports whether r is one of Unicode's 66 noncharacters.
func Noncharacter(r rune) bool {
	return r >= 0xfdd0 && r <= 0xfdef || r&0xfffe == 0xfffe && r <= unicode.MaxRune
}

// invisible reports whether r renders as nothing or only steers the
// rendering of others: a format character (Cf), another default-ignorable
// code point, or a variation selector (Unicode's DerivedCoreProperties
// Default_Ignorable_Code_Point, plus the Cf it leaves out).
func invisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		unicode.Is(unicode.Variation_Selector, r)
}

// visible reports whether r shows as something of its own: not the start
// of the text (-1), not a space, not invisible, not a control.
func visible(r rune) bool {
	return r >= 0 && !unicode.IsSpace(r) && !invisible(r) && !unicode.IsControl(r)
}

func codePoint(r rune) string {
	return fmt.Sprintf("U+%04X", r)
}

const atextSymbols = "!#$%&'*+-/=?^_`{|}~"

// checkEmail is the Email kind's rule (see the package comment).
func checkEmail(s string) error {
	syntax := errors.New("must be a plain email address such as name@example.com")
	for _, r := range s {
		if r > 0x7e || r < 0x21 {
			if r < 0x20 || r >= 0x7f && r <= 0x9f {
				return fmt.Errorf("must not contain control characters (%s)", codePoint(r))
			}
			if r == ' ' {
				return syntax
			}
			if invisible(r) {
				return fmt.Errorf("must not contain invisible or bidirectional formatting characters (%s)", codePoint(r))
			}
			return fmt.Errorf("must be an ASCII email address such as name@example.com (%s): internationalized addresses are not accepted", codePoint(r))
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 || len(s) > 254 {
		return syntax
	}
	local, domain := s[:at], s[at+1:]
	if len(local) == 0 || len(local) > 64 {
		return syntax
	}
	for _, atom := range strings.Split(local, ".") {
		if atom == "" || strings.IndexFunc(atom, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(atextSymbols, r))
		}) >= 0 {
			return syntax
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 || len(domain) > 253 {
		return syntax
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.IndexFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
		}) >= 0 {
			return syntax
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return syntax // all digits: an IPv4 address, not a host name
	}
	return nil
}

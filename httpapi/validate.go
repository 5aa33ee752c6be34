package httpapi

import (
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSafeInteger is the largest integer a JSON client (JavaScript) can hold
// exactly; prices above it are refused rather than silently rounded there.
const maxSafeInteger = 1<<53 - 1

// checkText validates a string field: length in characters (as PostgreSQL's
// char_length counts them), not blank when required, no NUL or other control
// characters except, when multiline, newline and tab, and no Unicode
// noncharacters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF: not for interchange; the
// name search's byte range ends at U+10FFFF, queries/products.sql).
func checkText(fe fieldErrors, field, s string, minLen, maxLen int, multiline bool) {
	n := utf8.RuneCountInString(s)
	switch {
	case minLen > 0 && strings.TrimSpace(s) == "":
		fe.add(field, "must not be blank")
	case n < minLen || n > maxLen:
		fe.add(field, "must be "+strconv.Itoa(minLen)+" to "+strconv.Itoa(maxLen)+" characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			fe.add(field, "must not contain control characters")
			return
		}
		if r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE {
			fe.add(field, "must not contain Unicode noncharacters")
			return
		}
	}
}

func checkRequired[T any](fe fieldErrors, field string, v *T) bool {
	if v == nil {
		fe.add(field, "is required")
		return false
	}
	return true
}

// checkPatch validates a PATCH field: null is refused (no field here is nullable).
func checkPatch[T any](fe fieldErrors, field string, o optional[T]) bool {
	if o.Set && o.Null {
		fe.add(field, "must not be null")
		return false
	}
	return o.Set
}

func checkPrice(fe fieldErrors, price int64) {
	if price < 0 || price > maxSafeInteger {
		fe.add("price", "must be an integer from 0 to "+strconv.Itoa(maxSafeInteger)+" (minor units)")
	}
}

func checkEmail(fe fieldErrors, email string) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" || len(email) > 254 || strings.ContainsAny(email, " \t\r\n") {
		fe.add("email", "must be a plain email address such as name@example.com")
	}
}

var validRoles = map[string]bool{"admin": true, "member": true, "viewer": true}

func checkRole(fe fieldErrors, role string) {
	if !validRoles[role] {
		fe.add("role", "must be admin, member or viewer")
	}
}

package httpapi

import (
	"strconv"

	"github.com/rowfence/rowfence/db/dbtype"
	"github.com/rowfence/rowfence/textrule"
)

// maxSafeInteger is the largest integer a JSON client (JavaScript) can hold
// exactly; prices above it are refused rather than silently rounded there.
const maxSafeInteger = 1<<53 - 1

// checkText validates a string field by its rules (textrule: its kind's
// characters and its length).
func checkText(fe fieldErrors, field, s string, rules textrule.Field) {
	if err := rules.Check(s); err != nil {
		fe.add(field, err.Error())
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

func checkRole(fe fieldErrors, role string) {
	if !dbtype.Role(role).Client() {
		fe.add("role", "must be admin, member or viewer")
	}
}

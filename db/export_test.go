package db

// MapError is mapError, for the tests of what it makes of errors that pgx
// returns outside the boundary (a raw pool's). Code outside tests has no way
// to it: its errors are mapped at the boundary (errors.go).
func MapError(err error) error { return mapError(err) }

// GenericPlan says whether One runs the statement named name with its
// generic plan (genericPlan).
func GenericPlan(name string) bool { return genericPlan[name] }

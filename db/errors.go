package db

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Errors are mapped once, at the database boundary: every DBTX that the
// generated queries talk to (the pipeline of One, Tx and Snapshot, and
// Unscoped's for everything outside a tenant scope) passes what pgx returns
// through mapError. Callers test with errors.Is against a Code and never look
// at SQLSTATEs or constraint names; the HTTP edge turns each Code into one
// problem (httpapi/problem.go).

// Code is the kind of a failure, shared by every layer (in the manner of
// benbjohnson/wtf's error codes). A Code is an error itself, so
// errors.Is(err, db.ErrNotFound) asks whether err has that code.
type Code string

func (c Code) Error() string { return string(c) }

const (
	// ErrNotFound: no row, including another tenant's row (RLS hides it, so
	// the two cases cannot be told apart, by design: leak vector 8).
	ErrNotFound Code = "not found"
	// ErrConflict: the write conflicts with the current state, such as a
	// unique constraint (always per tenant: leak vector 4).
	ErrConflict Code = "conflict"
	// ErrInvalid: a value is refused: a check, not-null or type constraint,
	// or a rule of the package that returns it.
	ErrInvalid Code = "invalid"
	// ErrForbidden: a policy or a privilege refused the statement.
	ErrForbidden Code = "forbidden"
	// ErrUnavailable: the database could not be reached in time.
	ErrUnavailable Code = "database unavailable"
	// ErrTimeout: a statement ran past the scope's statement_timeout.
	ErrTimeout Code = "statement timeout"
	// ErrLastAdmin: the write would leave a tenant that has an admin without
	// one (sql/migrations/00014_users_keep_an_admin.sql raises it as
	// check_violation on users_last_admin, through the API or in SQL as any
	// role; the tenant's own deletion is allowed).
	ErrLastAdmin Code = "last admin"
)

// Error is a failure with a Code: from the database (mapError), or from a
// package above it that gives its own errors a code (lifecycle, auth).
type Error struct {
	Code Code
	// Message says what was wrong in words a client may read (never SQL,
	// never another tenant's data); "" when the Code says it all.
	Message string
	// Field names the input at fault, as the API's JSON names it ("email"),
	// when it is known.
	Field string
	// Constraint names the database constraint that refused a write
	// (sql/migrations), when one did.
	Constraint string
	// Err is the cause (a *pgconn.PgError, a network error), for the log.
	Err error
}

func (e *Error) Error() string {
	var pgErr *pgconn.PgError
	switch {
	case e.Message != "":
		return e.Message
	case e.Constraint != "":
		return string(e.Code) + ": " + e.Constraint
	case errors.As(e.Err, &pgErr):
		return string(e.Code) + ": " + pgErr.Message
	case e.Err != nil:
		return string(e.Code) + ": " + e.Err.Error()
	default:
		return string(e.Code)
	}
}

// Unwrap gives the Code and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Code}
	}
	return []error{e.Code, e.Err}
}

// errNoRows is what a query that found nothing returns.
var errNoRows = &Error{Code: ErrNotFound, Err: pgx.ErrNoRows}

// mapError maps what pgx returns to an *Error with a Code. An error that has
// a Code already, and one that is not the database's (a caller's own), is
// returned as it is, so mapping twice changes nothing.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if _, mapped := errors.AsType[Code](err); mapped {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if pgErr.Code == "57014" { // query_canceled: statement_timeout
			return &Error{Code: ErrTimeout, Err: err}
		}
		// The server is going away or not there yet: admin_shutdown,
		// crash_shutdown, cannot_connect_now, and connection exceptions.
		if strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" {
			return &Error{Code: ErrUnavailable, Err: err}
		}
		if pgErr.Code == FrozenSQLState { // a tenant being moved between cells (package cells)
			return &Error{Code: ErrUnavailable, Message: "the tenant is being moved; retry shortly", Err: err}
		}
		code := codeOf(pgErr.Code)
		if code == "" {
			return err
		}
		e := &Error{Code: code, Constraint: pgErr.ConstraintName, Err: pgErr}
		if c, ok := constraints[pgErr.ConstraintName]; ok {
			e.Code, e.Field, e.Message = c.code, c.field, c.message
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return &Error{Code: ErrUnavailable, Err: err}
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return &Error{Code: ErrUnavailable, Err: err}
	}
	// A connection that broke under the statement (the server stopped or
	// the network failed): nothing is known about the statement's fate, and
	// the client may retry (and, for writes, should check first).
	if _, ok := errors.AsType[net.Error](err); ok || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return &Error{Code: ErrUnavailable, Err: err}
	}
	return err
}

// FrozenSQLState is the SQLSTATE a tenant's writes fail with while a move
// between cells holds them (cells.Move's freeze trigger): ErrUnavailable,
// so the client gets 503 with Retry-After and retries. Reads go on.
const FrozenSQLState = "RF503"

// codeOf is the Code of a SQLSTATE that a statement's data or privileges
// caused (PostgreSQL documentation, appendix A), or "".
func codeOf(sqlstate string) Code {
	switch sqlstate {
	case "23505": // unique_violation
		return ErrConflict
	case "23502", // not_null_violation
		"23503", // foreign_key_violation
		"23514", // check_violation
		"22001", // string_data_right_truncation
		"22003", // numeric_value_out_of_range
		"22007", // invalid_datetime_format
		"22008", // datetime_field_overflow
		"22021", // character_not_in_repertoire (NUL bytes)
		"22P02": // invalid_text_representation
		return ErrInvalid
	case "42501": // insufficient_privilege, including RLS WITH CHECK failures
		return ErrForbidden
	}
	return ""
}

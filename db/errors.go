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

// Domain errors. Everything One and Tx return passes through mapError, so the
// layers above test with errors.Is and never look at SQLSTATEs.
var (
	// ErrNotFound: no row, including another tenant's row (RLS hides it, so
	// the two cases cannot be told apart, by design).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique constraint (always per tenant) rejected the write.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a check, not-null or type constraint rejected the data.
	ErrInvalid = errors.New("invalid")
	// ErrForbidden: a policy or a privilege refused the statement.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the database could not be reached in time.
	ErrUnavailable = errors.New("database unavailable")
	// ErrTimeout: a statement ran past the scope's statement_timeout.
	ErrTimeout = errors.New("statement timeout")
)

// ConstraintError says which constraint refused a write.
type ConstraintError struct {
	Kind       error // ErrConflict, ErrInvalid or ErrForbidden
	Constraint string
	Column     string
	Err        *pgconn.PgError
}

func (e *ConstraintError) Error() string {
	switch {
	case e.Constraint != "":
		return e.Kind.Error() + ": " + e.Constraint
	case e.Err != nil:
		return e.Kind.Error() + ": " + e.Err.Message
	default:
		return e.Kind.Error()
	}
}

func (e *ConstraintError) Is(target error) bool { return target == e.Kind }
func (e *ConstraintError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// MapError maps a pgx error to the domain errors above, for callers that use
// the generated queries outside One and Tx (administration, the CLI).
func MapError(err error) error { return mapError(err) }

func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "57014" { // query_canceled: statement_timeout
			return errors.Join(ErrTimeout, err)
		}
		// The server is going away or not there yet: admin_shutdown,
		// crash_shutdown, cannot_connect_now, and connection exceptions.
		if strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" {
			return errors.Join(ErrUnavailable, err)
		}
		kind := kindOf(pgErr.Code)
		if kind == nil {
			return err
		}
		return &ConstraintError{Kind: kind, Constraint: pgErr.ConstraintName, Column: pgErr.ColumnName, Err: pgErr}
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return errors.Join(ErrUnavailable, err)
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return errors.Join(ErrUnavailable, err)
	}
	// A connection that broke under the statement (the server stopped or
	// the network failed): nothing is known about the statement's fate, and
	// the client may retry (and, for writes, should check first).
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

func kindOf(sqlstate string) error {
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
	return nil
}

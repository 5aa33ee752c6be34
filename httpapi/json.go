package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 1 << 20

// An early answer (a 413, a 401 before the body was looked at) reads and
// discards what is left of the body first, at most drainBytes within
// drainTimeout: a client that sends its whole body before it reads the
// answer (most do) would otherwise have its connection reset, because a
// TCP connection closed with unread data is aborted (RFC 9112, section
// 9.6; RFC 1122, 4.2.2.13) and the answer is lost with it. Longer bodies are
// left unread, and the connection closes after the answer.
const (
	drainBytes   = 2 * MaxBodyBytes
	drainTimeout = 5 * time.Second
)

// readBody reads the whole body, at most MaxBodyBytes, answering 413 or
// 400 itself.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	tooLarge := "the body may be at most " + strconv.Itoa(MaxBodyBytes) + " bytes"
	if r.ContentLength > MaxBodyBytes {
		writeProblem(w, r, probTooLarge, tooLarge)
		return nil, false
	}
	// Not http.MaxBytesReader: it marks the connection for closing at once,
	// where draining the rest may keep it usable.
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	switch {
	case err != nil:
		writeProblem(w, r, probBadRequest, "could not read the request body")
		return nil, false
	case len(body) > MaxBodyBytes:
		writeProblem(w, r, probTooLarge, tooLarge)
		return nil, false
	}
	return body, true
}

// drainBody reads and discards the rest of r's body before an early answer
// (see drainBytes). A client that asked for 100-continue has sent nothing
// unless it was read, so it is left alone.
func drainBody(w http.ResponseWriter, r *http.Request) {
	if r == nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength > drainBytes ||
		strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(drainTimeout)) == nil {
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	_, _ = io.CopyN(io.Discard, r.Body, drainBytes)
}

// bufferPool keeps answer buffers between requests.
var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// encode answers with v as JSON, with a Content-Length.
func encode(w http.ResponseWriter, status int, v any) {
	encodeResource(w, nil, status, v, false)
}

// encodeResource is encode for a single resource: with tagged, the answer
// carries a strong ETag (a hash of exactly these bytes), and a GET whose
// If-None-Match already holds it is answered 304 without a body.
func encodeResource(w http.ResponseWriter, r *http.Request, status int, v any, tagged bool) {
	bp := bufferPool.Get().(*[]byte)
	body, err := marshalJSON((*bp)[:0], v)
	defer func() {
		if cap(body) <= 1<<20 { // don't keep rare huge buffers
			*bp = body[:0]
			bufferPool.Put(bp)
		}
	}()
	if err != nil {
		writeProblem(w, nil, probInternal, "")
		return
	}
	h := w.Header()
	// ETag's and Content-Length's values in one slice, each capped so that
	// an Add to either copies.
	values := make([]string, 2)
	if tagged {
		tag := etagOf(body)
		values[0] = tag
		h[hdrETag] = values[0:1:1]
		if r != nil && r.Method == http.MethodGet && noneMatch(r.Header[hdrIfNoneMatch], tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h["Content-Type"] = contentTypeJSON
	values[1] = strconv.Itoa(len(body))
	h["Content-Length"] = values[1:2:2]
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// etagJSON is the ETag the representation of v has (what encodeResource
// sends for it).
func etagJSON(v any) string {
	b, err := marshalJSON(nil, v)
	if err != nil {
		return ""
	}
	return etagOf(b)
}

// validator is a request body that checks itself.
type validator interface {
	valid() fieldErrors
}

// decodeValid reads a JSON request body into a T and validates it. On any
// failure it answers with the right problem and returns ok=false:
// 415 wrong content type, 413 too large, 400 malformed (not JSON, not one
// object, not UTF-8, an unpaired surrogate escape, a duplicate or unknown
// field name), 422 a wrong type or an invalid value (textrule's rules among
// them). Problems about one field name it in errors[].field, nested fields
// joined with a dot (limits.rate_limit).
//
// The decoder is encoding/json/v2's (github.com/go-json-experiment/json,
// until Go ships it without GOEXPERIMENT): unlike encoding/json it refuses
// duplicate names (RFC 8259 section 4 leaves them undefined; I-JSON, RFC
// 7493 section 2.3, forbids them), invalid UTF-8 and unpaired surrogates
// instead of storing U+FFFD (RFC 7493 section 2.1), and matches names
// exactly, so that {"nAmE":…} is the unknown field it is for the contract
// (additionalProperties: false).
func decodeValid[T validator](w http.ResponseWriter, r *http.Request, mediaTypes ...string) (v T, ok bool) {
	if !acceptableMediaType(r.Header.Get("Content-Type"), mediaTypes) {
		writeProblem(w, r, probUnsupportedMedia,
			fmt.Sprintf("Content-Type must be %s", strings.Join(mediaTypes, " or ")))
		return v, false
	}
	raw, ok := readBody(w, r)
	if !ok {
		return v, false
	}
	if trimmed := bytes.TrimLeft(raw, " \t\r\n"); len(trimmed) > 0 && trimmed[0] != '{' {
		writeProblem(w, r, probMalformedJSON, "the body must hold exactly one JSON object")
		return v, false
	}
	nulls := fieldErrors{}
	if err := jsonv2.Unmarshal(raw, &v, jsonv2.RejectUnknownMembers(true), refuseNull(nulls)); err != nil {
		writeDecodeError(w, r, err)
		return v, false
	}
	errs := v.valid()
	if errs == nil {
		errs = fieldErrors{}
	}
	for field, detail := range nulls {
		errs[field] = detail // why it is missing
	}
	if len(errs) > 0 {
		writeValidation(w, r, errs)
		return v, false
	}
	return v, true
}

// refuseNull notes in nulls each null in an optional field of a POST body
// (a pointer: absent is nil), which would otherwise decode as the absent
// value: openapi.yaml gives none of them null ({"role":null} made a
// member). PATCH bodies see null through optional, and refuse it where it
// is no value.
func refuseNull(nulls fieldErrors) jsonv2.Options {
	note := func(dec *jsontext.Decoder) error {
		if dec.PeekKind() != 'n' {
			return errors.ErrUnsupported // the default decoding
		}
		nulls.add(fieldName(dec.StackPointer()), "must not be null")
		_, err := dec.ReadToken()
		return err
	}
	return jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, _ **string) error { return note(dec) }),
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, _ **int64) error { return note(dec) }),
	))
}

// writeDecodeError answers for an error of the JSON decoder.
func writeDecodeError(w http.ResponseWriter, r *http.Request, err error) {
	var syntax *jsontext.SyntacticError
	var semantic *jsonv2.SemanticError
	switch {
	case errors.As(err, &syntax):
		field := fieldName(syntax.JSONPointer)
		detail := ""
		switch msg := syntax.Err.Error(); {
		case errors.Is(syntax.Err, jsontext.ErrDuplicateName):
			detail = "appears more than once"
		case strings.Contains(msg, "invalid UTF-8"): // jsonwire.ErrInvalidUTF8, an internal package's
			detail = "is not valid UTF-8"
		case strings.Contains(msg, "surrogate"):
			detail = "holds an unpaired surrogate (a \\uD800-\\uDFFF escape without its pair, RFC 8259 section 8.2)"
		case errors.Is(syntax.Err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrUnexpectedEOF):
			if syntax.ByteOffset == 0 {
				writeProblem(w, r, probMalformedJSON, "the body is empty; send a JSON object")
			} else {
				writeProblem(w, r, probMalformedJSON, "the JSON body ends too early")
			}
			return
		}
		switch {
		case field == "":
			writeProblem(w, r, probMalformedJSON, fmt.Sprintf("invalid JSON at byte %d: %v", syntax.ByteOffset, syntax.Err))
		case detail == "":
			writeFieldProblem(w, r, probMalformedJSON, field, fmt.Sprintf("is not valid JSON (at byte %d: %v)", syntax.ByteOffset, syntax.Err))
		default:
			writeFieldProblem(w, r, probMalformedJSON, field, detail)
		}
	case errors.As(err, &semantic):
		field := fieldName(semantic.JSONPointer)
		switch {
		case errors.Is(semantic.Err, jsonv2.ErrUnknownName):
			writeFieldProblem(w, r, probMalformedJSON, field, "is not a field of this body (names are matched exactly, case included)")
		case field == "":
			writeProblem(w, r, probMalformedJSON, "the body must be a JSON object")
		default:
			writeValidation(w, r, fieldErrors{field: "must be " + jsonKind(semantic.GoType)})
		}
	default:
		writeProblem(w, r, probMalformedJSON, "invalid JSON: "+err.Error())
	}
}

// writeFieldProblem answers with a problem of type pt about one field. A
// field name the client made up is echoed at most maxEchoedName bytes long.
func writeFieldProblem(w http.ResponseWriter, r *http.Request, pt problemType, field, detail string) {
	if len(field) > maxEchoedName {
		field = strings.ToValidUTF8(field[:maxEchoedName], "") + "…"
	}
	writeProblemBody(w, r, Problem{Type: problemURNPrefix + pt.slug, Title: pt.title, Status: pt.status,
		Detail: "field " + strconv.Quote(field) + " " + detail, Errors: []FieldError{{Field: field, Detail: detail}}})
}

const maxEchoedName = 128

// fieldName names the member a JSON Pointer (RFC 6901) points at as the
// problems do: nested names joined with a dot.
func fieldName(p jsontext.Pointer) string {
	var parts []string
	for token := range p.Tokens() {
		parts = append(parts, token)
	}
	return strings.Join(parts, ".")
}

func acceptableMediaType(header string, allowed []string) bool {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	for _, a := range allowed {
		if mt == a {
			return true
		}
	}
	return false
}

// jsonKind says what JSON a Go type takes, for a 422's detail.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "of another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "of another type"
	}
}

// optional is a PATCH field: absent, null, or a value.
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Null = true
		return nil
	}
	return jsonv2.Unmarshal(b, &o.Value)
}

// ptr returns the value for a SQL narg: nil when absent.
func (o optional[T]) ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}

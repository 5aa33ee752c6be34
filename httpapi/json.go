package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
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
	if tagged {
		tag := etagOf(body)
		h.Set("ETag", tag)
		if r != nil && r.Method == http.MethodGet && noneMatch(r.Header.Values("If-None-Match"), tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
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
// 415 wrong content type, 413 too large, 400 malformed, not UTF-8, unknown
// field or trailing data, 422 a wrong type or an invalid value.
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
	if !utf8.Valid(raw) {
		// encoding/json would silently replace invalid bytes: refuse instead
		// of storing something the client did not send.
		writeProblem(w, r, probMalformedJSON, "the body is not valid UTF-8")
		return v, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			writeValidation(w, r, fieldErrors{typeErr.Field: "must be " + jsonKind(typeErr.Type.Kind().String())})
			return v, false
		}
		writeProblem(w, r, probMalformedJSON, jsonErrorDetail(err))
		return v, false
	}
	if dec.More() {
		writeProblem(w, r, probMalformedJSON, "the body must hold exactly one JSON object")
		return v, false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeProblem(w, r, probMalformedJSON, "the body must hold exactly one JSON object")
		return v, false
	}
	if errs := v.valid(); len(errs) > 0 {
		writeValidation(w, r, errs)
		return v, false
	}
	return v, true
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

func jsonErrorDetail(err error) string {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, err)
	case errors.Is(err, io.EOF):
		return "the body is empty; send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	default:
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return "the body must be a JSON object"
		}
		return "invalid JSON: " + err.Error()
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int64", "int", "int32":
		return "an integer"
	case "bool":
		return "a boolean"
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
	return json.Unmarshal(b, &o.Value)
}

// ptr returns the value for a SQL narg: nil when absent.
func (o optional[T]) ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}

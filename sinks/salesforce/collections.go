package salesforce

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxCollectionRecords is the most records (or ids) one sObject
// Collections request may carry (collections contract §1.6).
const MaxCollectionRecords = 200

// ErrOutcomeUnknown: a collection request got no definite answer (a 5xx,
// a timeout, a lost connection) after the retries the client allows, so
// its rows may or may not have been written. A create is never replayed
// on this basis (it would duplicate the rows that did commit): its rows
// are outcome unknown and must be looked for before they are sent again.
// An update, upsert or delete is replayed by the client's retry policy
// and is safe to send again once the retries are spent.
var ErrOutcomeUnknown = errors.New("salesforce: collection request outcome unknown")

// ErrResultCount: a collection answer's array does not have one element
// per record sent (collections contract §3.2): the rows cannot be
// correlated, and may have been written.
var ErrResultCount = errors.New("salesforce: collection results do not match the request")

// RecordField is one value of a collection record. Name is a field API name or,
// as in a Bulk CSV header, a relationship by external id: "Rel.Field"
// (e.g. Account.External_Id__c) or, for a polymorphic relationship,
// "Type:Rel.Field" (e.g. Lead:Who.Email). Value is nil (JSON null: clears
// the field), string, bool, int, int64, float64 (finite), json.Number
// (written verbatim: decimals keep their text), or time.Time (a date when
// DateOnly, else a dateTime in UTC with milliseconds).
type RecordField struct {
	Name     string
	Value    any
	DateOnly bool // with a time.Time Value: write yyyy-MM-dd
}

// Record is one record of a collection request, its fields in order.
// Omitted fields keep their value (update) or get their default (insert).
type Record []RecordField

// CollectionRequest is one sObject Collections write of up to
// MaxCollectionRecords records of one object.
type CollectionRequest struct {
	Object    string
	Operation Operation // OpInsert, OpUpdate, OpUpsert or OpDelete
	// ExternalIDField is the upsert's key field (required for OpUpsert).
	ExternalIDField string
	// Records are the rows. Update rows need an Id field; delete rows
	// only an Id field; upsert rows a value of ExternalIDField.
	Records []Record
	// AllOrNone rolls the whole request back when any row fails
	// (default false: every row commits or fails on its own).
	AllOrNone bool
	// Replay says an earlier call may have processed this request (a
	// resumed run sends again a request whose answer it did not record):
	// a delete then counts rows answered ENTITY_IS_DELETED as deleted, as
	// it does after its own retries.
	Replay bool
}

// CollectionResult is the outcome of one record, at the record's index.
type CollectionResult struct {
	ID      string     // the record's id; empty on a failed create or update
	Success bool       // the row was written
	Created bool       // upsert only: the row was inserted
	Errors  []RowError // the row's errors (Code is the statusCode), empty on success
	// Replayed says the request was sent again after an answer that may
	// hide its processing (a 5xx, 408 or lost connection; or req.Replay):
	// a row that failed now may have been written by the earlier send,
	// so a transient failure (UNABLE_TO_LOCK_ROW) does not say the row
	// is not in Salesforce.
	Replayed bool
}

// Err returns the first error of a failed row as a RowError (the same
// code, message and fields a Bulk job's sf__Error gives), or nil.
func (r *CollectionResult) Err() *RowError {
	if r.Success {
		return nil
	}
	if len(r.Errors) == 0 {
		return &RowError{Code: "UNKNOWN_EXCEPTION", Message: "the row failed without an error"}
	}
	return &r.Errors[0]
}

// collectionResultJSON is a result element on the wire.
type collectionResultJSON struct {
	ID      *string `json:"id"`
	Success bool    `json:"success"`
	Created bool    `json:"created"`
	Errors  []struct {
		StatusCode string   `json:"statusCode"`
		Message    string   `json:"message"`
		Fields     []string `json:"fields"`
	} `json:"errors"`
}

// WriteCollection sends one sObject Collections request (collections
// contract §1) and returns one result per record, in request order.
//
// Retries follow the client's one policy (IsRetryable), with one
// exception: a create (OpInsert) is replayed only after answers that prove
// nothing was processed (401 re-authentication, REQUEST_LIMIT_EXCEEDED,
// 429). After a 5xx, 408 or lost connection a create is not replayed:
// the error matches ErrOutcomeUnknown and its rows must be treated as
// possibly written. Update, upsert and delete are replayed like every
// idempotent call; when the retries are spent after such failures the
// error matches ErrOutcomeUnknown too (sending them again later is safe).
// A 400 (nothing processed) is returned as an *APIError at once. A delete
// that was replayed (by the retries, or req.Replay) counts rows answered
// ENTITY_IS_DELETED as deleted (an earlier attempt deleted them).
func (c *Client) WriteCollection(ctx context.Context, req CollectionRequest) ([]CollectionResult, error) {
	n := len(req.Records)
	what := fmt.Sprintf("%s %s of %d records", req.Operation, req.Object, n)
	if n == 0 || n > MaxCollectionRecords {
		return nil, fmt.Errorf("salesforce: collection %s: want 1 to %d records per request", what, MaxCollectionRecords)
	}
	cl := &call{path: "composite/sobjects", idempotent: true}
	switch req.Operation {
	case OpInsert:
		cl.method, cl.idempotent, cl.unrepeatable = "POST", false, true
	case OpUpdate:
		cl.method = "PATCH"
	case OpUpsert:
		if req.ExternalIDField == "" || strings.ContainsAny(req.ExternalIDField, "/?#") || strings.ContainsAny(req.Object, "/?#") {
			return nil, fmt.Errorf("salesforce: collection %s: bad external id field %q", what, req.ExternalIDField)
		}
		cl.method = "PATCH"
		cl.path += "/" + url.PathEscape(req.Object) + "/" + url.PathEscape(req.ExternalIDField)
	case OpDelete:
		cl.method = "DELETE"
		ids := make([]string, n)
		for i, r := range req.Records {
			id, ok := r.id()
			if !ok || id == "" || strings.Contains(id, ",") {
				return nil, fmt.Errorf("salesforce: collection %s: record %d has no usable Id", what, i)
			}
			ids[i] = id
		}
		cl.query = url.Values{"ids": {strings.Join(ids, ",")}, "allOrNone": {strconv.FormatBool(req.AllOrNone)}}
	default:
		return nil, fmt.Errorf("salesforce: collection %s: operation not supported by sObject Collections (want insert, update, upsert or delete)", what)
	}
	if req.Operation != OpDelete {
		body, err := EncodeCollectionBody(req)
		if err != nil {
			return nil, fmt.Errorf("salesforce: collection %s: %w", what, err)
		}
		cl.json = json.RawMessage(body)
	}
	// Whether the last attempt wrote its request: a failure before that
	// (no connection, a failed TLS handshake) cannot have been processed.
	var wrote atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { wrote.Store(false) },
		WroteHeaders: func() { wrote.Store(true) },
	})
	resp, err := c.do(tctx, cl)
	if err != nil {
		if ctx.Err() == nil && ambiguous(err) && wrote.Load() && !neverSent(err) {
			return nil, fmt.Errorf("salesforce: collection %s: %w after %d attempts: %w", what, ErrOutcomeUnknown, cl.attempts, err)
		}
		return nil, fmt.Errorf("salesforce: collection %s: %w", what, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		// The answer was cut: the rows were processed (or not) unseen.
		return nil, fmt.Errorf("salesforce: collection %s: %w: reading the answer: %w", what, ErrOutcomeUnknown, err)
	}
	var wire []collectionResultJSON
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, fmt.Errorf("salesforce: collection %s: %w: the answer is not a result array: %w", what, ErrResultCount, err)
	}
	if len(wire) != n {
		return nil, fmt.Errorf("salesforce: collection %s: %w: %d results for %d records", what, ErrResultCount, len(wire), n)
	}
	out := make([]CollectionResult, n)
	for i, w := range wire {
		r := CollectionResult{Success: w.Success, Created: w.Created && req.Operation == OpUpsert, Replayed: cl.replayed || req.Replay}
		if w.ID != nil {
			r.ID = *w.ID
		}
		for _, e := range w.Errors {
			r.Errors = append(r.Errors, RowError{Code: e.StatusCode, Message: e.Message, Fields: e.Fields})
		}
		if req.Operation == OpDelete && (cl.attempts > 1 || req.Replay) && !r.Success && len(r.Errors) == 1 && r.Errors[0].Code == "ENTITY_IS_DELETED" {
			// A replayed delete finds the rows an earlier attempt deleted
			// (collections contract §3.3: count them as deleted).
			r.Success, r.Errors = true, nil
			if r.ID == "" {
				r.ID, _ = req.Records[i].id()
			}
		}
		out[i] = r
	}
	return out, nil
}

// neverSent reports whether a transport failure happened before the
// request could reach the server: the connection was refused, the host
// did not resolve, or the TLS handshake failed.
func neverSent(err error) bool {
	var dnsErr *net.DNSError
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr) || errors.As(err, &recErr) || errors.As(err, &certErr)
}

// id returns the value of the record's Id field.
func (r Record) id() (string, bool) {
	for _, f := range r {
		if strings.EqualFold(f.Name, "Id") {
			s, ok := f.Value.(string)
			return s, ok
		}
	}
	return "", false
}

// EncodeCollectionBody returns the JSON body of a create, update or
// upsert request: {"allOrNone":…,"records":[…]}, every record with
// attributes.type first, then its fields in order (collections contract
// §2.5): nil as null, numbers and booleans as JSON types, relationship
// fields ("Rel.Field", "Type:Rel.Field") as nested reference objects
// (typed for polymorphic ones). An update's Id is written as "id".
func EncodeCollectionBody(req CollectionRequest) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"allOrNone":`)
	b.WriteString(strconv.FormatBool(req.AllOrNone))
	b.WriteString(`,"records":[`)
	typ, err := json.Marshal(req.Object)
	if err != nil {
		return nil, err
	}
	for i, rec := range req.Records {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"attributes":{"type":`)
		b.Write(typ)
		b.WriteString(`}`)
		for _, f := range rec {
			name := f.Name
			if strings.EqualFold(name, "Id") {
				if req.Operation == OpInsert {
					return nil, fmt.Errorf("record %d: an insert cannot carry Id", i)
				}
				name = "id"
			}
			v, err := jsonValue(f)
			if err != nil {
				return nil, fmt.Errorf("record %d field %s: %w", i, f.Name, err)
			}
			b.WriteByte(',')
			parentType, rest, typed := strings.Cut(name, ":")
			if !typed {
				rest, parentType = parentType, ""
			}
			rel, key, isRef := strings.Cut(rest, ".")
			if !isRef {
				writeKey(&b, name)
				b.Write(v)
				continue
			}
			if rel == "" || key == "" || strings.Contains(key, ".") {
				return nil, fmt.Errorf("record %d: field name %q: want Rel.Field or Type:Rel.Field", i, f.Name)
			}
			writeKey(&b, rel)
			b.WriteByte('{')
			if typed {
				b.WriteString(`"attributes":{"type":`)
				t, _ := json.Marshal(parentType)
				b.Write(t)
				b.WriteString(`},`)
			}
			writeKey(&b, key)
			b.Write(v)
			b.WriteByte('}')
		}
		b.WriteByte('}')
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

func writeKey(b *bytes.Buffer, k string) {
	q, _ := json.Marshal(k)
	b.Write(q)
	b.WriteByte(':')
}

// Salesforce's date and dateTime layouts (collections contract §2.5).
const (
	collDateLayout     = "2006-01-02"
	collDateTimeLayout = "2006-01-02T15:04:05.000Z"
)

// jsonValue encodes one field value (see RecordField).
func jsonValue(f RecordField) ([]byte, error) {
	switch x := f.Value.(type) {
	case nil:
		return []byte("null"), nil
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return nil, fmt.Errorf("%q is not a number", string(x))
		}
		return []byte(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("NaN and infinite numbers cannot be loaded into Salesforce")
		}
		return strconv.AppendFloat(nil, x, 'f', -1, 64), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	case time.Time:
		s := x.UTC().Format(collDateTimeLayout)
		if f.DateOnly {
			s = x.Format(collDateLayout)
		}
		return json.Marshal(s)
	case string:
		return json.Marshal(x)
	}
	return nil, fmt.Errorf("unsupported value type %T", f.Value)
}

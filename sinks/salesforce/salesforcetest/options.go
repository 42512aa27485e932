package salesforcetest

import (
	"crypto"
	"encoding/json"
	"fmt"
	"time"
)

// Default identities. They match the contract's examples so that golden
// files can be compared with it field for field.
const (
	// DefaultOrgID is the organization id (the contract's example org).
	DefaultOrgID = "00DHs0000001gPLMAY"
	// DefaultUserID is the integration user's id (createdById in job JSON).
	DefaultUserID = "005Hs00000AbCdEIAV"
	// DefaultUsername is the integration user's username (JWT "sub").
	DefaultUsername = "integration@acme.example"
	// DefaultClientID is the connected-app consumer key.
	DefaultClientID = "3MVG9emulatorClientId"
	// DefaultClientSecret is the connected-app consumer secret.
	DefaultClientSecret = "8A1Femulatorsecret"
	// DefaultRefreshToken is the refresh token accepted initially.
	DefaultRefreshToken = "5Aep861emulatorRefreshToken"
	// DefaultBatchSize is the number of rows in one internal batch.
	DefaultBatchSize = 10000
	// DefaultMaxUploadBytes is the largest raw upload accepted: 150 MB
	// after base64 encoding (contract §2.4, §3.4).
	DefaultMaxUploadBytes = 150 * 1000 * 1000 * 3 / 4
	// LatestAPIVersion is the newest API version the emulator lists.
	LatestAPIVersion = 67
)

// Compression selects how the emulator compresses responses.
type Compression int

const (
	// CompressionAuto gzips a response only when the request's
	// Accept-Encoding allows gzip (the default).
	CompressionAuto Compression = iota
	// CompressionNever never compresses responses.
	CompressionNever
	// CompressionAlways gzips every CSV and JSON response, ignoring
	// Accept-Encoding, so clients are forced to honour Content-Encoding.
	CompressionAlways
)

// Options configures a Server. A nil *Options means defaults. Options are
// read once by NewServer/NewHandler; use Server.SetFaults to change fault
// injection at run time.
type Options struct {
	// AccessToken is a pre-issued access token valid from the start
	// (default: a realistic "00D…!AQ…" session id).
	AccessToken string
	// OrgID and UserID are the 18-character organization and integration
	// user ids (defaults DefaultOrgID, DefaultUserID).
	OrgID, UserID string

	// ClientID and ClientSecret identify the connected app for the
	// client_credentials, password and refresh_token grants (defaults
	// DefaultClientID, DefaultClientSecret).
	ClientID, ClientSecret string
	// Username and Password are accepted by the password grant (Password
	// is compared with password+securityToken as sent). Username is also the
	// required JWT "sub" (default DefaultUsername; Password defaults to
	// "password").
	Username, Password string
	// RefreshToken is accepted by the refresh_token grant (default
	// DefaultRefreshToken).
	RefreshToken string
	// RotateRefreshTokens makes the refresh_token grant return a new
	// refresh token and invalidate the old one.
	RotateRefreshTokens bool
	// JWTPublicKey verifies RS256 JWT bearer assertions (*rsa.PublicKey).
	JWTPublicKey crypto.PublicKey
	// JWTCertificatePEM is an alternative to JWTPublicKey: a PEM encoded
	// X.509 certificate or PKIX/PKCS#1 public key.
	JWTCertificatePEM []byte
	// JWTAudiences lists accepted "aud" values (default
	// https://login.salesforce.com, https://test.salesforce.com and the
	// emulator's own URL).
	JWTAudiences []string
	// LoginHost makes the token endpoint behave like login.salesforce.com:
	// client_credentials is refused with "request not supported on this
	// domain".
	LoginHost bool
	// MinimalTokenResponse switches token responses to the observed minimal
	// shape (access_token, scope, instance_url, api_instance_url,
	// token_type).
	MinimalTokenResponse bool
	// JWTAccessTokens makes the token endpoint issue JWT-shaped access
	// tokens instead of "00D…!…" session ids.
	JWTAccessTokens bool
	// InstanceURL overrides the instance_url returned by the token endpoint
	// (default: the server's URL, or the request's Host in handler mode).
	InstanceURL string

	// APIRequestLimit is the daily API request allowance reported in
	// Sforce-Limit-Info and /limits (default 100000). Calls beyond it get
	// 403 REQUEST_LIMIT_EXCEEDED.
	APIRequestLimit int64
	// DailyRecordLimit is the ingest record allocation (default
	// 150,000,000). A batch that would exceed it fails the job and the
	// remaining rows are unprocessed.
	DailyRecordLimit int64
	// DailyBatchLimit is the internal batch allocation (default 15000).
	DailyBatchLimit int64
	// BatchSize is the number of rows per internal batch (default 10000).
	BatchSize int
	// ProcessingRate limits processing to this many rows per second
	// (0 = as fast as possible).
	ProcessingRate float64
	// MaxUploadBytes is the largest accepted upload (default
	// DefaultMaxUploadBytes); a larger upload gets 201 but the job fails
	// when processed.
	MaxUploadBytes int64
	// ListPageSize is the number of jobs per page of GET /jobs/ingest
	// (default 1000).
	ListPageSize int
	// QueryPageSize is the default maxRecords of query results (default
	// 50000).
	QueryPageSize int

	// Objects replaces the built-in catalog (DefaultObjects). Use
	// LoadObjects to read pasted describe output.
	Objects []ObjectDescribe

	// Clock returns the current time (default time.Now). Timestamps are
	// printed in UTC with millisecond precision.
	Clock func() time.Time
	// Seed seeds the random number generator used by rate-based faults and
	// by generated tokens, so runs are reproducible.
	Seed uint64
	// Faults are the initial fault switches.
	Faults Faults

	// AllowNonLoopback lets Listen bind to non-loopback addresses.
	AllowNonLoopback bool

	// SecondUploadErrorCode is the errorCode of the second-PUT rejection
	// (default "BULK_API_ERROR"; the alternative seen in the wild is
	// "INVALIDJOB"). Contract §2.4.
	SecondUploadErrorCode string
	// SecondUploadFailsAtClose accepts a second PUT with 201 and fails the
	// close PATCH with the "multipe contents" body instead.
	SecondUploadFailsAtClose bool
	// PutAfterCloseMultipleContents answers a PUT to a closed job with the
	// "multipe contents" body instead of INVALIDJOBSTATE.
	PutAfterCloseMultipleContents bool
	// RejectCloseWithoutUpload rejects PATCH UploadComplete on a job that
	// has no upload (default: accept; the job completes with 0 rows).
	RejectCloseWithoutUpload bool
	// FailEmptyUpload fails a job whose upload has no data rows with
	// "InvalidBatch : No data found" (default: JobComplete, 0/0).
	FailEmptyUpload bool
	// AcceptAnyContentType accepts PUT /batches with any Content-Type
	// (default: only text/csv, else 415).
	AcceptAnyContentType bool
	// EmptyResultsZeroBytes answers empty result sets with a 0-byte body
	// instead of the header line.
	EmptyResultsZeroBytes bool
	// UnprocessedHeaderOnlyOnHeaderFailure answers unprocessedrecords of a
	// job that failed header validation with the header only (default: all
	// uploaded rows).
	UnprocessedHeaderOnlyOnHeaderFailure bool
	// ShuffleResults returns result rows in a (seeded) random order.
	ShuffleResults bool
	// CountWholeBatches makes numberRecordsProcessed of a Failed/Aborted
	// job count every row of each started internal batch (contract §9.15).
	CountWholeBatches bool
	// CountersWhileOpen includes the counters in GET job info while the
	// job is Open (default: omitted).
	CountersWhileOpen bool
	// HardDeleteDisabled rejects hardDelete jobs at create with 400
	// FEATURENOTENABLED.
	HardDeleteDisabled bool
	// Compression selects response compression (default CompressionAuto).
	Compression Compression

	// Logf, if set, receives one line per request and per job transition.
	Logf func(format string, args ...any)
}

// Faults are fault-injection switches. They can be changed at run time
// with Server.SetFaults or POST /__emulator/faults. Rates are
// probabilities in [0,1] drawn from the seeded generator.
type Faults struct {
	// FailRate5xx answers this fraction of /services/data calls with 503
	// before doing anything.
	FailRate5xx float64
	// RequestLimitExceeded answers every /services/data call with 403
	// REQUEST_LIMIT_EXCEEDED.
	RequestLimitExceeded bool
	// RequestLimitNext answers the next N /services/data calls with 403
	// REQUEST_LIMIT_EXCEEDED (counts down).
	RequestLimitNext int
	// TokenTTL expires access tokens this long after they were issued.
	TokenTTL time.Duration
	// TokenMaxUses expires an access token after it authorized N API calls.
	TokenMaxUses int
	// LockErrorRate fails this fraction of rows with UNABLE_TO_LOCK_ROW.
	LockErrorRate float64
	// ProcessingDelay keeps a closed job in UploadComplete this long
	// before processing starts.
	ProcessingDelay time.Duration
	// FailJobAfterRows fails a job after it processed N rows; the rest
	// are unprocessed.
	FailJobAfterRows int64
	// DropConnectionRate closes the connection without a response for
	// this fraction of /services/data calls.
	DropConnectionRate float64
	// DuplicateResultRow lists the first row of every non-empty
	// successfulresults file twice (a result file that does not match
	// the upload).
	DuplicateResultRow bool
	// OmitIDEcho leaves the echoed Id column out of the successful and
	// failed results of update, delete and hardDelete jobs (as Bulk API
	// servers that do not echo it do); sf__Id stays.
	OmitIDEcho bool
}

type faultsJSON struct {
	FailRate5xx          float64 `json:"fail5xxRate"`
	RequestLimitExceeded bool    `json:"requestLimitExceeded"`
	RequestLimitNext     int     `json:"requestLimitNext"`
	TokenTTL             string  `json:"tokenTTL"`
	TokenMaxUses         int     `json:"tokenMaxUses"`
	LockErrorRate        float64 `json:"lockErrorRate"`
	ProcessingDelay      string  `json:"processingDelay"`
	FailJobAfterRows     int64   `json:"failJobAfterRows"`
	DropConnectionRate   float64 `json:"dropConnectionRate"`
	DuplicateResultRow   bool    `json:"duplicateResultRow"`
	OmitIDEcho           bool    `json:"omitIdEcho"`
}

// MarshalJSON encodes the faults with camelCase keys and durations as Go
// duration strings ("1.5s").
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		FailRate5xx: f.FailRate5xx, RequestLimitExceeded: f.RequestLimitExceeded,
		RequestLimitNext: f.RequestLimitNext, TokenTTL: f.TokenTTL.String(), TokenMaxUses: f.TokenMaxUses,
		LockErrorRate: f.LockErrorRate, ProcessingDelay: f.ProcessingDelay.String(),
		FailJobAfterRows: f.FailJobAfterRows, DropConnectionRate: f.DropConnectionRate,
		DuplicateResultRow: f.DuplicateResultRow, OmitIDEcho: f.OmitIDEcho,
	})
}

// UnmarshalJSON decodes the MarshalJSON form. Keys that are absent keep
// their current value, so a partial document updates only what it names.
func (f *Faults) UnmarshalJSON(b []byte) error {
	aux := faultsJSON{
		FailRate5xx: f.FailRate5xx, RequestLimitExceeded: f.RequestLimitExceeded,
		RequestLimitNext: f.RequestLimitNext, TokenTTL: f.TokenTTL.String(), TokenMaxUses: f.TokenMaxUses,
		LockErrorRate: f.LockErrorRate, ProcessingDelay: f.ProcessingDelay.String(),
		FailJobAfterRows: f.FailJobAfterRows, DropConnectionRate: f.DropConnectionRate,
		DuplicateResultRow: f.DuplicateResultRow, OmitIDEcho: f.OmitIDEcho,
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	ttl, err := time.ParseDuration(aux.TokenTTL)
	if err != nil {
		return fmt.Errorf("tokenTTL: %w", err)
	}
	delay, err := time.ParseDuration(aux.ProcessingDelay)
	if err != nil {
		return fmt.Errorf("processingDelay: %w", err)
	}
	*f = Faults{
		FailRate5xx: aux.FailRate5xx, RequestLimitExceeded: aux.RequestLimitExceeded,
		RequestLimitNext: aux.RequestLimitNext, TokenTTL: ttl, TokenMaxUses: aux.TokenMaxUses,
		LockErrorRate: aux.LockErrorRate, ProcessingDelay: delay,
		FailJobAfterRows: aux.FailJobAfterRows, DropConnectionRate: aux.DropConnectionRate,
		DuplicateResultRow: aux.DuplicateResultRow, OmitIDEcho: aux.OmitIDEcho,
	}
	return f.validate()
}

func (f Faults) validate() error {
	for name, r := range map[string]float64{"fail5xxRate": f.FailRate5xx, "lockErrorRate": f.LockErrorRate,
		"dropConnectionRate": f.DropConnectionRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("%s %v not in [0,1]", name, r)
		}
	}
	if f.TokenTTL < 0 || f.ProcessingDelay < 0 || f.RequestLimitNext < 0 || f.TokenMaxUses < 0 || f.FailJobAfterRows < 0 {
		return fmt.Errorf("fault values must not be negative")
	}
	return nil
}

package salesforcetest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// serveData handles everything under /services/data. rest is the path
// after "/services/data" with no trailing slash.
func (s *Server) serveData(w http.ResponseWriter, r *http.Request, rest string) {
	segs := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if rest == "" {
		s.count(r.Method + " /services/data")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writeMethodNotAllowed(w, r, "GET", "HEAD")
			return
		}
		s.writeJSONValue(w, r, http.StatusOK, versionList())
		return
	}
	route := routeName(segs)
	s.mu.Lock()
	s.countLocked(r.Method + " " + route)
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", s.apiUsed, s.opts.APIRequestLimit))
	// Faults that hit before the request does anything.
	f := &s.faults
	drop := f.DropConnectionRate > 0 && s.rng.Float64() < f.DropConnectionRate
	fail5xx := !drop && f.FailRate5xx > 0 && s.rng.Float64() < f.FailRate5xx
	s.mu.Unlock()
	if drop && dropConnection(w) {
		return
	}
	if fail5xx {
		s.writeErr(w, r, http.StatusServiceUnavailable, "SERVER_UNAVAILABLE",
			"Service temporarily unavailable (emulator fault injection)")
		return
	}
	if !s.authorize(w, r) {
		return
	}
	version, ok := parseVersion(segs[0])
	if !ok {
		s.writeNotFound(w, r)
		return
	}
	if err := decodeBody(r); err != nil {
		s.writeBodyErr(w, r, err)
		return
	}
	segs = segs[1:]
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	s.routeData(w, r, version, segs)
}

// routeName maps a data path to a pattern for Requests().
func routeName(segs []string) string {
	out := make([]string, len(segs))
	for i, sg := range segs {
		switch {
		case i == 0 && strings.HasPrefix(sg, "v"):
			out[i] = "vXX.X"
		case i == 3 && len(segs) > 1 && segs[1] == "jobs":
			out[i] = "{id}"
		case i == 2 && len(segs) > 1 && segs[1] == "sobjects":
			out[i] = "{object}"
		case i == 3 && len(segs) > 1 && segs[1] == "sobjects" && sg != "describe":
			out[i] = "{id}"
		default:
			out[i] = sg
		}
	}
	return "/services/data/" + strings.Join(out, "/")
}

// authorize checks the bearer token, the request-limit faults and the
// daily API allowance, counts the call and sets Sforce-Limit-Info. It
// writes the error response and returns false when the call is refused.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(auth, " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	setLimitInfo := func() {
		w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", s.apiUsed, s.opts.APIRequestLimit))
	}
	setLimitInfo()
	if auth == "" {
		s.writeInvalidSession(w, r)
		return false
	}
	if !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth") || strings.TrimSpace(tok) == "" {
		s.writeErrMessageFirst(w, r, http.StatusUnauthorized, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
		return false
	}
	t := s.tokens[strings.TrimSpace(tok)]
	if t == nil || !s.tokenValidLocked(t) {
		s.writeInvalidSession(w, r)
		return false
	}
	t.uses++
	if s.faults.RequestLimitExceeded || s.faults.RequestLimitNext > 0 || s.apiUsed >= s.opts.APIRequestLimit {
		if s.faults.RequestLimitNext > 0 {
			s.faults.RequestLimitNext--
		}
		s.writeErrMessageFirst(w, r, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return false
	}
	s.apiUsed++
	setLimitInfo()
	return true
}

// tokenValidLocked reports whether t may still authorize calls. s.mu must
// be held.
func (s *Server) tokenValidLocked(t *token) bool {
	if t.expired {
		return false
	}
	if ttl := s.faults.TokenTTL; ttl > 0 && s.now().Sub(t.issued) >= ttl {
		t.expired = true
		return false
	}
	if n := s.faults.TokenMaxUses; n > 0 && t.uses >= n {
		t.expired = true
		return false
	}
	return true
}

// parseVersion parses "v62.0" into "62.0".
func parseVersion(seg string) (string, bool) {
	if !strings.HasPrefix(seg, "v") {
		return "", false
	}
	major, minor, ok := strings.Cut(seg[1:], ".")
	if !ok || minor != "0" {
		return "", false
	}
	n, err := strconv.Atoi(major)
	if err != nil || n < 20 || n > LatestAPIVersion || strconv.Itoa(n) != major {
		return "", false
	}
	return major + ".0", true
}

func versionMajor(v string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(v, ".0"))
	return n
}

// releaseLabel returns the release name of an API version ("Winter '25"
// for 62.0).
func releaseLabel(major int) string {
	idx := major - 62
	season := [...]string{"Winter", "Spring", "Summer"}[((idx%3)+3)%3]
	year := 25 + floorDiv(idx, 3)
	return fmt.Sprintf("%s '%02d", season, year)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func versionList() []any {
	var out []any
	for v := 20; v <= LatestAPIVersion; v++ {
		out = append(out, obj{
			{"label", releaseLabel(v)},
			{"url", fmt.Sprintf("/services/data/v%d.0", v)},
			{"version", fmt.Sprintf("%d.0", v)},
		})
	}
	return out
}

func (s *Server) routeData(w http.ResponseWriter, r *http.Request, version string, segs []string) {
	base := "/services/data/v" + version
	switch {
	case len(segs) == 0:
		if r.Method != http.MethodGet {
			s.writeMethodNotAllowed(w, r, "GET", "HEAD")
			return
		}
		s.writeJSONValue(w, r, http.StatusOK, obj{
			{"jobs", base + "/jobs"},
			{"limits", base + "/limits"},
			{"sobjects", base + "/sobjects"},
			{"query", base + "/query"},
		})
	case segs[0] == "limits" && len(segs) == 1:
		if r.Method != http.MethodGet {
			s.writeMethodNotAllowed(w, r, "GET", "HEAD")
			return
		}
		s.handleLimits(w, r)
	case segs[0] == "sobjects":
		s.handleSObjects(w, r, version, segs[1:])
	case segs[0] == "composite" && len(segs) >= 2 && segs[1] == "sobjects":
		s.routeCollections(w, r, version, segs[2:])
	case segs[0] == "jobs" && len(segs) >= 2 && segs[1] == "ingest":
		s.routeIngest(w, r, version, segs[2:])
	case segs[0] == "jobs" && len(segs) >= 2 && segs[1] == "query":
		s.routeQuery(w, r, version, segs[2:])
	default:
		s.writeNotFound(w, r)
	}
}

func (s *Server) handleLimits(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	api := s.opts.APIRequestLimit
	apiRem := api - s.apiUsed
	batches, batchesRem := s.opts.DailyBatchLimit, s.opts.DailyBatchLimit-s.batchesUsed
	queryJobs := int64(0)
	for _, j := range s.jobOrder {
		if j.query {
			queryJobs++
		}
	}
	s.mu.Unlock()
	limit := func(max, rem int64) obj {
		if rem < 0 {
			rem = 0
		}
		return obj{{"Max", max}, {"Remaining", rem}}
	}
	s.writeJSONValue(w, r, http.StatusOK, obj{
		{"DailyApiRequests", limit(api, apiRem)},
		{"DailyAsyncApexExecutions", limit(250000, 250000)},
		{"DailyBulkApiBatches", limit(batches, batchesRem)},
		{"DailyBulkV2QueryFileStorageMB", limit(976562, 976562)},
		{"DailyBulkV2QueryJobs", limit(10000, 10000-queryJobs)},
		{"DataStorageMB", limit(5, 5)},
		{"FileStorageMB", limit(20, 20)},
	})
}

func (s *Server) handleSObjects(w http.ResponseWriter, r *http.Request, version string, segs []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeMethodNotAllowed(w, r, "GET", "HEAD")
		return
	}
	base := "/services/data/v" + version + "/sobjects/"
	switch len(segs) {
	case 0:
		var list []any
		for _, o := range s.objList {
			list = append(list, obj{
				{"name", o.desc.Name}, {"label", o.desc.Label}, {"keyPrefix", o.prefix},
				{"custom", o.desc.Custom}, {"createable", true}, {"updateable", true},
				{"deletable", true}, {"queryable", true},
				{"urls", obj{{"sobject", base + o.desc.Name}, {"describe", base + o.desc.Name + "/describe"}}},
			})
		}
		s.writeJSONValue(w, r, http.StatusOK, obj{{"encoding", "UTF-8"}, {"maxBatchSize", 200}, {"sobjects", list}})
		return
	case 2:
		o := s.objects[strings.ToLower(segs[0])]
		if o == nil {
			s.writeNotFound(w, r)
			return
		}
		if segs[1] == "describe" {
			s.writeJSONValue(w, r, http.StatusOK, describeJSON(o, base))
			return
		}
		s.handleGetRecord(w, r, version, o, segs[1])
		return
	}
	s.writeNotFound(w, r)
}

func describeJSON(o *object, base string) obj {
	fields := make([]any, 0, len(o.fieldList))
	for _, f := range o.fieldList {
		var rel any
		if f.RelationshipName != "" {
			rel = f.RelationshipName
		}
		refs := f.ReferenceTo
		if refs == nil {
			refs = []string{}
		}
		picks := make([]any, 0, len(f.PicklistValues))
		for _, p := range f.PicklistValues {
			picks = append(picks, obj{{"active", p.Active}, {"defaultValue", p.DefaultValue},
				{"label", p.Label}, {"validFor", nil}, {"value", p.Value}})
		}
		fields = append(fields, obj{
			{"name", f.Name}, {"label", f.Label}, {"type", f.Type}, {"length", f.Length},
			{"nillable", f.Nillable}, {"createable", f.Createable}, {"updateable", f.Updateable},
			{"defaultedOnCreate", f.DefaultedOnCreate}, {"externalId", f.ExternalID},
			{"idLookup", f.IDLookup}, {"unique", f.Unique}, {"caseSensitive", f.CaseSensitive},
			{"restrictedPicklist", f.RestrictedPicklist}, {"referenceTo", refs},
			{"relationshipName", rel}, {"polymorphicForeignKey", f.PolymorphicForeignKey},
			{"picklistValues", picks},
		})
	}
	return obj{
		{"name", o.desc.Name}, {"label", o.desc.Label}, {"keyPrefix", o.prefix}, {"custom", o.desc.Custom},
		{"createable", true}, {"updateable", true}, {"deletable", true}, {"queryable", true},
		{"fields", fields},
		{"urls", obj{{"sobject", base + o.desc.Name}, {"describe", base + o.desc.Name + "/describe"}}},
	}
}

// handleGetRecord serves GET /sobjects/{object}/{id} from the record store
// (used by clients for /sobjects/User/{id}).
func (s *Server) handleGetRecord(w http.ResponseWriter, r *http.Request, version string, o *object, id string) {
	id15, ok := normalizeID(id)
	s.mu.Lock()
	var rec *record
	if ok {
		if st := s.store[strings.ToLower(o.desc.Name)]; st != nil {
			rec = st.find(id15)
		}
	}
	if rec == nil || rec.deleted {
		s.mu.Unlock()
		s.writeNotFound(w, r)
		return
	}
	out := obj{
		{"attributes", obj{{"type", o.desc.Name}, {"url", "/services/data/v" + version + "/sobjects/" + o.desc.Name + "/" + rec.id()}}},
		{"Id", rec.id()},
	}
	for _, f := range o.fieldList {
		if f.Name == "Id" {
			continue
		}
		v, set := rec.get(f)
		if !set {
			out = append(out, kv{f.Name, nil})
			continue
		}
		out = append(out, kv{f.Name, typedJSON(f, v)})
	}
	s.mu.Unlock()
	s.writeJSONValue(w, r, http.StatusOK, out)
}

// typedJSON renders a stored value as the JSON type of its field.
func typedJSON(f *FieldDescribe, v string) any {
	switch f.Type {
	case "boolean":
		return v == "true"
	case "int", "double", "currency", "percent", "long":
		return rawNum(v)
	}
	return v
}

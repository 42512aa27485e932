package salesforcetest

import (
	"net/http"
	"strings"
)

// handleAdmin serves the unauthenticated /__emulator/ endpoints:
//
//	GET  /__emulator/faults          current Faults as JSON
//	POST /__emulator/faults          update Faults (keys absent keep their value)
//	GET  /__emulator/collection-faults   current CollectionFaults as JSON
//	POST /__emulator/collection-faults   update CollectionFaults (keys absent keep their value)
//	POST /__emulator/expire-tokens   expire every issued access token
//	GET  /__emulator/jobs            all jobs (JobInfo) as JSON
//	GET  /__emulator/records/{obj}   stored records of an object as JSON
//	GET  /__emulator/requests        request counters as JSON
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "faults":
		s.handleFaults(w, r, "faults", func() any { return s.Faults() }, func(body []byte) (any, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			f := s.faults
			if err := f.UnmarshalJSON(body); err != nil {
				return nil, err
			}
			s.faults = f
			return f, nil
		})
	case rest == "collection-faults":
		s.handleFaults(w, r, "collection faults", func() any { return s.CollectionFaults() }, func(body []byte) (any, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			f := s.collFaults
			if err := f.UnmarshalJSON(body); err != nil {
				return nil, err
			}
			s.collFaults = f
			return f, nil
		})
	case rest == "expire-tokens":
		if r.Method != http.MethodPost {
			s.writeMethodNotAllowed(w, r, "POST")
			return
		}
		s.ExpireTokens()
		w.WriteHeader(http.StatusNoContent)
	case rest == "jobs":
		s.writeGoJSON(w, r, http.StatusOK, s.Jobs())
	case strings.HasPrefix(rest, "records/"):
		obj := strings.TrimPrefix(rest, "records/")
		if s.objects[strings.ToLower(obj)] == nil {
			s.writeNotFound(w, r)
			return
		}
		recs := s.Records(obj)
		if recs == nil {
			recs = []map[string]string{}
		}
		s.writeGoJSON(w, r, http.StatusOK, recs)
	case rest == "requests":
		s.writeGoJSON(w, r, http.StatusOK, s.Requests())
	default:
		s.writeNotFound(w, r)
	}
}

// handleFaults serves GET (get's value as JSON) and POST/PUT/PATCH (set
// decodes the body and returns the new value) of a fault-switch resource.
func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request, what string, get func() any, set func([]byte) (any, error)) {
	switch r.Method {
	case http.MethodGet:
		s.writeGoJSON(w, r, http.StatusOK, get())
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if err := decodeBody(r); err != nil {
			s.writeBodyErr(w, r, err)
			return
		}
		body, _, err := readBody(r, 1<<20)
		if err != nil {
			s.writeBodyErr(w, r, err)
			return
		}
		v, err := set(body)
		if err != nil {
			s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "invalid "+what+": "+err.Error())
			return
		}
		s.writeGoJSON(w, r, http.StatusOK, v)
	default:
		s.writeMethodNotAllowed(w, r, "GET", "POST")
	}
}

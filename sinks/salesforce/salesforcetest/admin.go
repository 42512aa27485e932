package salesforcetest

import (
	"net/http"
	"strings"
)

// handleAdmin serves the unauthenticated /__emulator/ endpoints:
//
//	GET  /__emulator/faults          current Faults as JSON
//	POST /__emulator/faults          update Faults (keys absent keep their value)
//	POST /__emulator/expire-tokens   expire every issued access token
//	GET  /__emulator/jobs            all jobs (JobInfo) as JSON
//	GET  /__emulator/records/{obj}   stored records of an object as JSON
//	GET  /__emulator/requests        request counters as JSON
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request, rest string) {
	switch {
	case rest == "faults":
		switch r.Method {
		case http.MethodGet:
			s.writeGoJSON(w, r, http.StatusOK, s.Faults())
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
			s.mu.Lock()
			f := s.faults
			err = f.UnmarshalJSON(body)
			if err == nil {
				s.faults = f
			}
			s.mu.Unlock()
			if err != nil {
				s.writeErr(w, r, http.StatusBadRequest, "API_ERROR", "invalid faults: "+err.Error())
				return
			}
			s.writeGoJSON(w, r, http.StatusOK, f)
		default:
			s.writeMethodNotAllowed(w, r, "GET", "POST")
		}
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

package salesforcesource

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/sinks/salesforce"
)

// CodeBadValue is the RowError code of a record holding a value that does
// not parse as its field's described type.
const CodeBadValue = "bad_value"

// columnType maps a describe field type to a column type (see the package
// doc). Compound fields are refused naming the components to select.
func columnType(f *salesforce.Field, object string) (pipeline.Type, error) {
	switch strings.ToLower(f.Type) {
	case "boolean":
		return pipeline.TypeBool, nil
	case "int", "long":
		return pipeline.TypeInt, nil
	case "double", "currency", "percent":
		return pipeline.TypeDecimal, nil
	case "date":
		return pipeline.TypeDate, nil
	case "datetime":
		return pipeline.TypeTimestamp, nil
	case "address":
		p := strings.TrimSuffix(f.Name, "Address")
		if strings.HasSuffix(f.Name, "__c") {
			p = strings.TrimSuffix(f.Name, "__c") + "__"
			return 0, fmt.Errorf("%s.%s is a compound address field, which a Bulk API query cannot select: select its components instead (%sStreet__s, %sCity__s, %sStateCode__s, %sPostalCode__s, %sCountryCode__s)", object, f.Name, p, p, p, p, p)
		}
		return 0, fmt.Errorf("%s.%s is a compound address field, which a Bulk API query cannot select: select its components instead (%sStreet, %sCity, %sState, %sPostalCode, %sCountry, %sLatitude, %sLongitude)", object, f.Name, p, p, p, p, p, p, p)
	case "location":
		p := strings.TrimSuffix(f.Name, "__c")
		return 0, fmt.Errorf("%s.%s is a compound geolocation field, which a Bulk API query cannot select: select its components instead (%s__Latitude__s, %s__Longitude__s)", object, f.Name, p, p)
	}
	// id, string, picklist, multipicklist, reference, textarea, email,
	// phone, url, combobox, time, encryptedstring and anything newer.
	return pipeline.TypeString, nil
}

// parseValue converts one CSV cell of a column of type t into a value
// boxed by rb (s aliases the results reader's buffer: text is copied). An
// empty cell is "" in a string column and null in any other (Salesforce
// writes null and empty text alike as an empty cell, and stores empty text
// as null).
func parseValue(rb *rowBuilder, t pipeline.Type, s string) (any, error) {
	if t == pipeline.TypeString {
		if s == "" {
			return "", nil
		}
		return rb.str(s), nil
	}
	if s == "" {
		return nil, nil
	}
	switch t {
	case pipeline.TypeBool:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not a boolean (true or false)", s)
	case pipeline.TypeInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return rb.int(n), nil
	case pipeline.TypeDecimal:
		if !isDecimal(s) {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				// An exponent (1.0E7): keep the exact digits as plain text.
				return normalizeExp(s), nil
			}
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return rb.str(s), nil
	case pipeline.TypeDate:
		d, ok := parseDate(s)
		if !ok {
			return nil, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
		}
		return rb.time(d), nil
	case pipeline.TypeTimestamp:
		if ts, ok := parseDateTime(s); ok {
			return rb.time(ts), nil
		}
		for _, layout := range []string{"2006-01-02T15:04:05.000Z0700", time.RFC3339Nano} {
			if ts, err := time.Parse(layout, s); err == nil {
				return rb.time(ts.UTC()), nil
			}
		}
		return nil, fmt.Errorf("%q is not a datetime (2006-01-02T15:04:05.000Z)", s)
	}
	return rb.str(s), nil
}

// digits returns the number written by the n ASCII digits at s[i:], or
// -1 if one of them is not a digit.
func digits(s string, i, n int) int {
	v := 0
	for _, c := range []byte(s[i : i+n]) {
		if c < '0' || c > '9' {
			return -1
		}
		v = v*10 + int(c-'0')
	}
	return v
}

// parseDate parses "YYYY-MM-DD" (a date Salesforce writes) without
// time.Parse, refusing a day the month does not have.
func parseDate(s string) (time.Time, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	y, m, d := digits(s, 0, 4), digits(s, 5, 2), digits(s, 8, 2)
	if y < 0 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

// parseDateTime parses "YYYY-MM-DDThh:mm:ss.sssZ", the one form of a
// datetime in Salesforce's query results, without time.Parse; any other
// text is left to time.Parse (ok false).
func parseDateTime(s string) (time.Time, bool) {
	if len(s) != 24 || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z' {
		return time.Time{}, false
	}
	d, ok := parseDate(s[:10])
	h, mi, sec, ms := digits(s, 11, 2), digits(s, 14, 2), digits(s, 17, 2), digits(s, 20, 3)
	if !ok || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 || ms < 0 {
		return time.Time{}, false
	}
	return d.Add(time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute +
		time.Duration(sec)*time.Second + time.Duration(ms)*time.Millisecond), true
}

// normalizeExp writes a number in exponent form as a plain decimal
// without going through a float.
func normalizeExp(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	mant, exp, _ := strings.Cut(strings.ToLower(s), "e")
	e, _ := strconv.Atoi(exp)
	ip, fp, _ := strings.Cut(mant, ".")
	digits := ip + fp
	point := len(ip) + e
	var out string
	switch {
	case point <= 0:
		out = "0." + strings.Repeat("0", -point) + digits
	case point >= len(digits):
		out = digits + strings.Repeat("0", point-len(digits))
	default:
		out = digits[:point] + "." + digits[point:]
	}
	out = strings.TrimLeft(out, "0")
	if out == "" || out[0] == '.' {
		out = "0" + out
	}
	if neg {
		out = "-" + out
	}
	return out
}

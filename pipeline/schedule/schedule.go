// Package schedule parses the `schedule:` of pipeline files: cron
// expressions (robfig/cron/v3, standard 5-field syntax and descriptors such
// as @hourly and "@every 15m") with an optional IANA time zone.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // schedules name IANA time zones; do not depend on the host's zoneinfo

	"github.com/robfig/cron/v3"
)

// Parse parses a cron expression with an optional time zone, given either
// as tz or as a CRON_TZ= prefix of expr (not both). Without either, the
// schedule runs in UTC. spec is the expression as cron sees it, with the
// zone, for display.
func Parse(expr, tz string) (spec string, sched cron.Schedule, err error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return "", nil, errors.New("the schedule is empty: give a cron expression such as \"*/15 * * * *\" or @hourly")
	}
	hasTZ := strings.HasPrefix(expr, "CRON_TZ=") || strings.HasPrefix(expr, "TZ=")
	if hasTZ && !strings.Contains(expr, " ") {
		return "", nil, fmt.Errorf("schedule %q has a time zone but no fields", expr)
	}
	switch {
	case tz != "" && hasTZ:
		return "", nil, errors.New("give the time zone either as timezone or as CRON_TZ= in the schedule, not both")
	case tz != "":
		if _, err := time.LoadLocation(tz); err != nil {
			return "", nil, fmt.Errorf("timezone %q is not an IANA time zone name such as Europe/Berlin: %v", tz, err)
		}
		spec = "CRON_TZ=" + tz + " " + expr
	case hasTZ:
		spec = expr
	default:
		spec = "CRON_TZ=UTC " + expr
	}
	defer func() { // cron v3.0.1 panics on some malformed CRON_TZ prefixes
		if r := recover(); r != nil {
			err = fmt.Errorf("schedule %q: %v", expr, r)
		}
	}()
	sched, err = cron.ParseStandard(spec)
	if err != nil {
		return "", nil, fmt.Errorf("schedule %q does not parse: %v (use 5 fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @every 15m)", expr, err)
	}
	return spec, sched, nil
}

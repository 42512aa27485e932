package serve

import (
	"encoding/json"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkflow/bulkflow/pipeline"
	"github.com/bulkflow/bulkflow/pipeline/state"
)

// metrics are the Prometheus metrics of /metrics, in a registry of
// their own.
type metrics struct {
	reg         *prometheus.Registry
	rows        *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	running     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	jobs        *prometheus.CounterVec
	apiLeft     *prometheus.GaugeVec
	synced      *prometheus.CounterVec
}

// rowOutcomes are the final outcomes of rows (Counts.Balanced: read plus
// fan-out copies equals their sum).
var rowOutcomes = []string{"loaded", "filtered", "dead_lettered", "lost"}

func newMetrics(names []string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkflow_rows_total", Help: "Rows by final outcome (loaded, filtered, dead_lettered, lost), per pipeline.",
		}, []string{"pipeline", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkflow_runs_total", Help: "Finished runs by status (succeeded, partial, failed, cancelled).",
		}, []string{"pipeline", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bulkflow_run_duration_seconds", Help: "Duration of finished runs.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}, []string{"pipeline"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulkflow_running", Help: "1 while the pipeline runs in this process.",
		}, []string{"pipeline"}),
	}
	m.lastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bulkflow_last_success_timestamp_seconds", Help: "When the last run that succeeded (or was partial) finished, Unix time.",
	}, []string{"pipeline"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkflow_salesforce_jobs_total", Help: "Bulk API ingest jobs by final state, per sink stage.",
	}, []string{"pipeline", "stage", "state"})
	m.apiLeft = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bulkflow_salesforce_api_requests_remaining", Help: "Daily API requests left in the org at the end of the last run (Sforce-Limit-Info).",
	}, []string{"pipeline", "stage"})
	m.synced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkflow_sync_keys_total", Help: "Sync stage keys by decision and outcome (new, changed, unchanged, loaded, failed, deleted, delete_failed).",
	}, []string{"pipeline", "stage", "kind"})
	m.reg.MustRegister(m.rows, m.runs, m.duration, m.running, m.lastSuccess, m.jobs, m.apiLeft, m.synced)
	for _, n := range names {
		m.running.WithLabelValues(n).Set(0)
		for _, o := range rowOutcomes {
			m.rows.WithLabelValues(n, o)
		}
	}
	return m
}

func (m *metrics) observe(name string, rec state.RunRecord) {
	c := rec.Counts
	for i, v := range []int64{c.Loaded, c.Filtered, c.DeadLettered, c.Lost} {
		m.rows.WithLabelValues(name, rowOutcomes[i]).Add(float64(v))
	}
	m.runs.WithLabelValues(name, rec.Status).Inc()
	m.duration.WithLabelValues(name).Observe(rec.FinishedAt.Sub(rec.StartedAt).Seconds())
}

// observeReport records what the run report's sink and sync sections say:
// Salesforce jobs by state, the API allowance left, sync decisions. The
// sections are read through their JSON form so that serve does not depend
// on each sink's Go types.
func (m *metrics) observeReport(name string, rep *pipeline.Report) {
	if rep == nil {
		return
	}
	if rep.Status == pipeline.StatusSucceeded || rep.Status == pipeline.StatusPartial {
		m.lastSuccess.WithLabelValues(name).Set(float64(rep.FinishedAt.Unix()))
	}
	for stage, v := range rep.Sinks {
		var st struct {
			Jobs []struct {
				State string `json:"state"`
			} `json:"jobs"`
			APIUsed int64 `json:"api_used"`
			APIMax  int64 `json:"api_max"`
		}
		if b, err := json.Marshal(v); err != nil || json.Unmarshal(b, &st) != nil {
			continue
		}
		for _, j := range st.Jobs {
			m.jobs.WithLabelValues(name, stage, j.State).Inc()
		}
		if st.APIMax > 0 {
			m.apiLeft.WithLabelValues(name, stage).Set(float64(st.APIMax - st.APIUsed))
		}
	}
	for stage, v := range rep.Sync {
		var sm map[string]any
		if b, err := json.Marshal(v); err != nil || json.Unmarshal(b, &sm) != nil {
			continue
		}
		for _, k := range []string{"new", "changed", "unchanged", "loaded", "failed", "deleted", "delete_failed"} {
			if f, ok := sm[k].(float64); ok {
				m.synced.WithLabelValues(name, stage, k).Add(f)
			}
		}
	}
}

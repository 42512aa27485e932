package serve

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bulkflow/bulkflow/cmd/bulkflow/internal/serve/servetest"
)

// chromiumPath finds Debian's Chromium (.ci/chromium.sh installs it). A
// missing browser skips the test with a message, except under CI=true,
// where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: .ci/chromium.sh installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium, or .ci/chromium.sh): the status page's browser test does not run")
	return ""
}

// screenshotDir is $BULKFLOW_SCREENSHOT_DIR, else a new temporary folder
// that outlives the test (for people to look at).
func screenshotDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("BULKFLOW_SCREENSHOT_DIR"); d != "" {
		servetest.MkdirAll(t, d)
		return d
	}
	d, err := os.MkdirTemp("", "bulkflow-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// statusDOM is what the browser rendered, read back from the DOM.
type statusDOM struct {
	LoadedBars  int      `json:"loadedBars"`  // rect.bar.loaded with a rendered height
	DeadBars    int      `json:"deadBars"`    // rect.bar.dead with a rendered height
	ChartWidth  float64  `json:"chartWidth"`  // the svg's rendered width
	GroupCodes  []string `json:"groupCodes"`  // tr.error-group data-code, in order
	Retryable   []string `json:"retryable"`   // their retryable cell's text
	NextRun     string   `json:"nextRun"`     // .next-run's text
	LeaseHolder string   `json:"leaseHolder"` // .lease-holder's text
	FileLinks   int      `json:"fileLinks"`   // .dead-letter-files a
}

const statusDOMScript = `(() => {
  const sec = document.querySelector('section[data-pipeline="accounts"]');
  const tall = sel => [...sec.querySelectorAll(sel)].filter(r => r.getBoundingClientRect().height > 0).length;
  const rows = [...sec.querySelectorAll('tr.error-group')];
  return {
    loadedBars: tall('svg.history rect.bar.loaded'),
    deadBars: tall('svg.history rect.bar.dead'),
    chartWidth: sec.querySelector('svg.history').getBoundingClientRect().width,
    groupCodes: rows.map(r => r.dataset.code),
    retryable: rows.map(r => r.cells[3].innerText.trim()),
    nextRun: sec.querySelector('.next-run').innerText.trim(),
    leaseHolder: sec.querySelector('.lease-holder').innerText.trim(),
    fileLinks: sec.querySelectorAll('.dead-letter-files a').length,
  };
})()`

// TestStatusPageInBrowser renders the status page in headless Chromium
// and checks the DOM it built (chart bars drawn, error group rows, next
// run, lease holder), then writes a screenshot of the page to
// $BULKFLOW_SCREENSHOT_DIR (a temporary folder by default; the test logs
// the path).
func TestStatusPageInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	s, ts, recs := statusFixture(t)
	// The browser lives at most this long (chromedp: no timeout on the
	// context of the first Run, which starts the browser).
	parent, cancelParent := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelParent()
	// The network of CI machines may be closed: without these flags
	// Chromium waits on lookups of its own services.
	alloc, cancelAlloc := chromedp.NewExecAllocator(parent,
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 900),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`section[data-pipeline="accounts"] svg.history`)),
	)
	if err != nil {
		t.Fatalf("chromium (%s): load the status page: %v", chromium, err)
	}
	dom, err := chromedp.Run(ctx, chromedp.Evaluate[statusDOM](statusDOMScript))
	if err != nil {
		t.Fatalf("chromium: read the DOM: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	dir := screenshotDir(t)
	shot := filepath.Join(dir, "serve-status-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page: %s (%d bytes)", shot, len(png))

	if dom.LoadedBars != len(recs) || dom.DeadBars != len(recs) || dom.ChartWidth <= 0 {
		t.Errorf("chart: %d loaded and %d dead-lettered bars drawn, width %.0f; want %d each", dom.LoadedBars, dom.DeadBars, dom.ChartWidth, len(recs))
	}
	want := map[string]string{"field_count": "no", "expr_error": "no", "UNABLE_TO_LOCK_ROW": "yes"}
	if len(dom.GroupCodes) != len(want) || len(dom.Retryable) != len(dom.GroupCodes) {
		t.Errorf("error group rows %q (retryable %q), want %v", dom.GroupCodes, dom.Retryable, want)
	}
	for i, code := range dom.GroupCodes {
		if w, ok := want[code]; !ok || i >= len(dom.Retryable) || dom.Retryable[i] != w {
			t.Errorf("error group %q: retryable %q, want %q", code, dom.Retryable, w)
		}
	}
	next := s.pipelines["accounts"].sched.Next(time.Now()).Format("2006-01-02 15:04 MST")
	if !strings.HasPrefix(dom.NextRun, next) {
		t.Errorf("next run %q, want %s", dom.NextRun, next)
	}
	if !strings.Contains(dom.LeaseHolder, "held by "+statusHolder) {
		t.Errorf("lease holder %q, want held by %s", dom.LeaseHolder, statusHolder)
	}
	if dom.FileLinks != 3 {
		t.Errorf("%d dead-letter file links, want 3", dom.FileLinks)
	}
	if len(png) < 10_000 || string(png[1:4]) != "PNG" {
		t.Errorf("screenshot: %d bytes, not a PNG of a page", len(png))
	}
}

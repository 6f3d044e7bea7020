package httpapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A method the mux does not serve on a known path is 405 with Allow; an
// unknown path is 404. Neither echoes what the client sent.
func TestUnservedMethodIs405WithAllow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PATCH", "/v1/api-login", http.StatusMethodNotAllowed, "POST"},
		{"DELETE", "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/v1/api/admin/trials/1", http.StatusMethodNotAllowed, "GET, HEAD, PUT, DELETE"},
		{"BREW", "/v1/api/admin/trials/1", http.StatusMethodNotAllowed, "GET, HEAD, PUT, DELETE"},
		{"GET", "/v1/no-such-thing", http.StatusNotFound, ""},
		{"BREW", "/v1/no-such-thing", http.StatusNotFound, ""},
	} {
		r := b.call(t, tc.method, tc.path, b.admin, "")
		if r.status != tc.status || r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tc.method, tc.path, r.status, r.header.Get("Allow"), tc.status, tc.allow)
		}
		if msg, _ := r.body["error"].(string); strings.Contains(msg, tc.method) && tc.status == http.StatusNotFound {
			t.Errorf("%s %s: the answer echoes the method: %q", tc.method, tc.path, msg)
		}
	}
}

// Whatever methods and paths clients invent, the HTTP metrics keep a fixed
// set of label values: known methods else "other", route patterns else
// "unmatched". 300 random methods used to add 300 series.
func TestHTTPMetricLabelsStayBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 300 {
		method := fmt.Sprintf("X%dY", i)
		path := fmt.Sprintf("/v1/api/admin/trials/%d", i)
		if i%2 == 1 {
			path = fmt.Sprintf("/nowhere/%d", i)
		}
		req, _ := http.NewRequest(method, b.server.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rec := httptest.NewRecorder()
	b.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var series []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "trialsd_http_requests_total{") {
			series = append(series, line)
		}
	}
	t.Logf("%d request series after 300 invented methods and paths", len(series))
	if len(series) > 4 {
		t.Errorf("%d request series after 300 invented methods and paths, want at most 4:\n%s", len(series), strings.Join(series, "\n"))
	}
	for _, s := range series {
		if strings.Contains(s, `method="X`) || strings.Contains(s, "nowhere") {
			t.Errorf("a client's method or path became a label: %s", s)
		}
	}
}

package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/emails"
	"github.com/trialsd/trialsd/internal/httpapi"
)

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

func loadSpec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		// The unsubscribe link's page is HTML, validated as text.
		openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.RegisteredBodyDecoder("text/plain"))
		specDoc, specErr = openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
		if specErr == nil {
			specErr = specDoc.Validate(context.Background())
		}
		if specErr == nil {
			specRouter, specErr = gorillamux.NewRouter(specDoc)
		}
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specDoc, specRouter
}

// conformsToSpec wraps the API so that every response a test provokes is
// validated against openapi.yaml: status, content type and body schema.
// Requests to paths the document does not list (the catch-all 404) are
// let through unchecked.
func conformsToSpec(t testing.TB, h http.Handler) http.Handler {
	_, router := loadSpec(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		probe := r.Clone(context.Background())
		probe.URL.Scheme, probe.URL.Host = "http", r.Host
		route, params, err := router.FindRoute(probe)
		if err != nil {
			return
		}
		err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request: probe, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			},
			Status: rec.Code,
			Header: rec.Header(),
			Body:   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		})
		if err != nil {
			t.Errorf("%s %s answered %d %s, against openapi.yaml: %v", r.Method, r.URL.Path, rec.Code, rec.Body.String(), err)
		}
	})
}

// Every operation the document lists is routed (none falls through to the
// catch-all 404), and the document is served.
func TestOpenAPIDocumentsTheRoutes(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	b := setup(t)
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if path == "/v1/openapi.yaml" || path == "/metrics" || path == emails.UnsubscribePath { // not JSON; their own tests
				continue
			}
			p := strings.NewReplacer("{enterpriseTrialId}", "1", "{organizationId}", "1", "{userId}", "1").Replace(path)
			if strings.HasPrefix(path, "/api/v2/") {
				p = strings.Replace(path, "{organizationId}", strings.Repeat("0", 32), 1)
			}
			r := b.call(t, method, p, b.admin, "{}")
			if msg, _ := r.body["error"].(string); strings.HasPrefix(msg, "No such operation") {
				t.Errorf("%s %s is documented but not routed", method, path)
			}
		}
	}
	resp, err := http.Get(b.server.URL + "/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, httpapi.OpenAPI) {
		t.Fatalf("/v1/openapi.yaml: %d", resp.StatusCode)
	}
}

// /metrics is described, so a validating proxy in front of the daemon finds
// its route, and its answer is what the document says.
func TestOpenAPIDescribesMetrics(t *testing.T) {
	t.Parallel()
	_, router := loadSpec(t)
	b := setup(t)
	req := httptest.NewRequest(http.MethodGet, b.server.URL+"/metrics", nil)
	if _, _, err := router.FindRoute(req); err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	resp, err := http.Get(b.server.URL + "/metrics") // conformsToSpec validates the answer
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("trialsd_")) {
		t.Fatalf("/metrics: %d %.200s", resp.StatusCode, body)
	}
}

// The document's username rule is the server's: every candidate the schema
// accepts, accounts.ValidUsername accepts, and the other way round.
func TestOpenAPIUsernameRuleIsTheServers(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	schema := doc.Components.Schemas["SignupFields"].Value.Properties["username"].Value
	candidates := []string{
		"fred", "fr3d-x", "a.b_c-d", "Fred.Flintstone", "abc", strings.Repeat("a", 30), strings.Repeat("a", 31),
		"_abc", "abc_", ".abc", "abc.", "ab..cd", "ab._cd", "ab__cd", "ab-.cd", "ab.-cd", "-abc-", "a--b",
		"ab cd", "abçd", "ab@cd", "a.b.c.d", "____", "a_b.c_d",
	}
	for _, c := range candidates {
		documented := schema.VisitJSON(c) == nil
		if documented != accounts.ValidUsername(c) {
			t.Errorf("username %q: openapi.yaml says %t, the server %t", c, documented, !documented)
		}
	}
}

// The admin-only operations say so: every operation under /v1/api/admin is
// tagged Admin, and no other is.
func TestOpenAPITagsAdminOperations(t *testing.T) {
	t.Parallel()
	doc, _ := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			admin := strings.HasPrefix(path, "/v1/api/admin/")
			if tagged := slices.Contains(op.Tags, "Admin"); tagged != admin {
				t.Errorf("%s %s: tagged Admin %t, admin-only %t", method, path, tagged, admin)
			}
			if op.Summary == "" {
				t.Errorf("%s %s has no summary", method, path)
			}
		}
	}
}

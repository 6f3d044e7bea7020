package console

import "testing"

// A login goes on to the console or River's UI only, judged on the path
// as http.Redirect sends it (cleaned), and never to another site.
func TestSafeNext(t *testing.T) {
	t.Parallel()
	for next, want := range map[string]string{
		"/console/trials?q=x":           "/console/trials?q=x",
		"/riverui/jobs/4":               "/riverui/jobs/4",
		"/console/trials/../upcoming":   "/console/trials/../upcoming",
		"/console/..//x":                "/console/trials",
		"/console/../riverui/../x":      "/console/trials",
		"/riverui/../../x":              "/console/trials",
		"//evil.example/console/":       "/console/trials",
		"https://evil.example/console/": "/console/trials",
		"/x":                            "/console/trials",
		"":                              "/console/trials",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

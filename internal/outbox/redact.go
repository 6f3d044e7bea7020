package outbox

import (
	"errors"
	"net/url"
	"strings"
)

// RedactURL is how a webhook URL is shown everywhere but to an admin who
// asks for its endpoint: in the log, the attempt log, the messages' errors,
// the console and the webhook.endpoint_disabled event sent to the other
// endpoints. Receivers put their secrets in any part of a URL
// (https://user:TOKEN@…, /hooks/TOKEN, ?token=…), so only the scheme, the
// host and the port are kept; credentials, the path and the query become
// "…" where there were some, and a fragment is dropped. The endpoint's id
// says which one it was.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unreadable URL)"
	}
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.User != nil {
		b.WriteString("…@")
	}
	b.WriteString(u.Host)
	if strings.Trim(u.EscapedPath(), "/") != "" {
		b.WriteString("/…")
	}
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?…")
	}
	return b.String()
}

// withoutURL is err without the *url.Error that wraps what net/http met:
// its message repeats the request's whole URL, query included.
func withoutURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

package httpapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/trialsd/trialsd/internal/apperr"
)

// redirectURL is where a new user is sent: the requested origin when it is
// allowed (else the first allowed one), path, and the caller's query
// parameters.
func redirectURL(allowed []string, origin, query *string, path string) (string, error) {
	base := allowed[0]
	if origin != nil && slices.Contains(allowed, strings.TrimRight(*origin, "/")) {
		base = strings.TrimRight(*origin, "/")
	}
	u := base + path
	if query != nil && *query != "" {
		q := strings.TrimPrefix(*query, "?")
		if _, err := url.ParseQuery(q); err != nil || strings.ContainsAny(q, "#\r\n ") {
			return "", apperr.InvalidField("redirectUrlQueryParams", "redirectUrlQueryParams is not a valid query string")
		}
		u += "?" + q
	}
	return u, nil
}

func organizationPath(id int64) string { return fmt.Sprintf("/organization/%d", id) }

func projectPath(id int64) string { return fmt.Sprintf("/studio/%d", id) }

package wire

import (
	"strconv"

	"github.com/trialsd/trialsd/internal/apperr"
)

// ParseID reads an id sent as text (a path segment, a query or form
// value): a positive integer, else a 400 naming field. The API and the
// console read their ids with it, so both refuse the same way.
func ParseID(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, apperr.InvalidField(field, "%s must be a positive integer", field)
	}
	return id, nil
}

// ParseOptionalID reads an optional id, such as a page's cursor: 0 when s
// is empty, else as ParseID.
func ParseOptionalID(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return ParseID(field, s)
}

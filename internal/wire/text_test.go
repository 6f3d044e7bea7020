package wire

import (
	"strings"
	"testing"

	"github.com/trialsd/trialsd/internal/apperr"
)

// CheckJSON takes what Postgres's text and jsonb take, and refuses the
// rest with a 400 naming where: the decoded value names a field, and the
// raw text is scanned for what decoding hides (a duplicate key's value, a
// lone surrogate that decoding turns into U+FFFD).
func TestCheckJSON(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)
	tests := []struct {
		raw   string
		field string // "" when taken
	}{
		{`{"a":"b","c":[1,{"d":"e"}]}`, ""},
		{`{"a":"\\u0000"}`, ""}, // a backslash, then the text u0000
		{`{"a":"\ud83d\ude00"}`, ""},
		{`{"a":"\u00e9\u4e2d"}`, ""},
		{strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth), ""},
		{`{"a":"x\u0000"}`, "a"},
		{`{"a":[{"b":{"\u0000k":1}}]}`, "a[0].b"},
		{`{"a":"x\u0000","a":"ok"}`, "body"},
		{`{"a":"\ud800"}`, "body"},
		{`{"a":"\ud800x"}`, "body"},
		{`{"a":"\ude00"}`, "body"},
		{`{"a":"\ud800\u0041"}`, "body"},
		{"{\"a\":\"\xff\"}", "body"},
		{deep, "body"},
		{`{"a":1} {}`, "body"},
		{`{"a":`, "body"},
	}
	for _, tc := range tests {
		err := CheckJSON([]byte(tc.raw), "body")
		if tc.field == "" {
			if err != nil {
				t.Errorf("%q: %v, want it taken", tc.raw, err)
			}
			continue
		}
		var e *apperr.Error
		if !asAppErr(err, &e) || e.Code != apperr.Invalid || e.Field != tc.field {
			t.Errorf("%q: %v, want a 400 on %s", tc.raw, err, tc.field)
		}
	}
}

func asAppErr(err error, target **apperr.Error) bool {
	e, ok := err.(*apperr.Error)
	*target = e
	return ok
}

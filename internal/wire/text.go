package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/trialsd/trialsd/internal/apperr"
)

// MaxJSONDepth bounds how deeply a body's arrays and objects nest: no
// operation takes more than a few levels, and the work and memory of
// decoding grow with the depth of what a client sends.
const MaxJSONDepth = 32

// CheckJSON refuses, with a 400 naming where, the JSON a later step would
// refuse or choke on: text that is not UTF-8, arrays and objects nested
// deeper than MaxJSONDepth, data after the first JSON value, and a NUL
// character in any string or key (Postgres text and jsonb cannot hold
// one). Field names the whole of raw in messages ("body").
func CheckJSON(raw []byte, field string) error {
	if !utf8.Valid(raw) {
		return apperr.InvalidField(field, "%s is not valid UTF-8", field)
	}
	if depth(raw) > MaxJSONDepth {
		return apperr.InvalidField(field, "%s nests arrays and objects deeper than %d levels", field, MaxJSONDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return apperr.InvalidField(field, "%s is not valid JSON", field)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.InvalidField(field, "%s holds data after its JSON value", field)
	}
	return checkStrings(value, "")
}

// CheckText refuses a NUL character or invalid UTF-8 in s, the value of
// field.
func CheckText(s, field string) error {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return apperr.InvalidField(field, "%s must not contain NUL characters or invalid UTF-8", field)
	}
	return nil
}

// checkStrings is CheckText over every string and key of a decoded value;
// path is where value sits, as a client would write it (utmParams[0].x).
func checkStrings(value any, path string) error {
	switch v := value.(type) {
	case string:
		return CheckText(v, fieldOr(path))
	case []any:
		for i, e := range v {
			if err := checkStrings(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range v {
			at := k
			if path != "" {
				at = path + "." + k
			}
			if err := CheckText(k, fieldOr(path)); err != nil {
				return err
			}
			if err := checkStrings(e, at); err != nil {
				return err
			}
		}
	}
	return nil
}

func fieldOr(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// depth is how deeply raw's arrays and objects nest, outside strings.
func depth(raw []byte) int {
	d, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			d++
			deepest = max(deepest, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return deepest
}

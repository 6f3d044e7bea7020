package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
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
// deeper than MaxJSONDepth, anything but one JSON value, and a NUL
// character in any string or key (Postgres text and jsonb cannot hold
// one). Field names the whole of raw in messages ("body").
//
// It reads raw as text, without decoding it, so that a request is decoded
// once, by its handler. In valid UTF-8 JSON a NUL can only be written
// \u0000, which the scan finds, as it finds a lone UTF-16 surrogate escape
// (decoding would turn it into U+FFFD, but parts of a body are stored as
// sent, in jsonb, which refuses it); only then is raw decoded, to name the
// field at fault.
func CheckJSON(raw []byte, field string) error {
	if !utf8.Valid(raw) {
		return apperr.InvalidField(field, "%s is not valid UTF-8", field)
	}
	s := scan(raw)
	if s.depth > MaxJSONDepth {
		return apperr.InvalidField(field, "%s nests arrays and objects deeper than %d levels", field, MaxJSONDepth)
	}
	if !json.Valid(raw) {
		return notOneValue(raw, field)
	}
	if s.badEscape {
		return badEscape(raw, field)
	}
	return nil
}

// notOneValue says why raw, which json.Valid refused, is not one JSON value.
func notOneValue(raw []byte, field string) error {
	var value any
	if json.NewDecoder(bytes.NewReader(raw)).Decode(&value) == nil {
		return apperr.InvalidField(field, "%s holds data after its JSON value", field)
	}
	return apperr.InvalidField(field, "%s is not valid JSON", field)
}

// badEscape is the 400 for raw's \u0000 or lone surrogate: naming the
// string or key that holds a NUL when the decoded value shows it, else the
// whole of raw (a duplicate key hid it, or it is a surrogate).
func badEscape(raw []byte, field string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var value any
	if dec.Decode(&value) == nil {
		if err := checkStrings(value, ""); err != nil {
			return err
		}
	}
	return apperr.InvalidField(field, "%s holds a \\u0000 or a lone UTF-16 surrogate escape", field)
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

// scanned is what scan finds in raw JSON text.
type scanned struct {
	// depth is how deeply arrays and objects nest, outside strings.
	depth int
	// badEscape: a string holds \u0000, or a \u escape of a UTF-16
	// surrogate that is not one half of a pair.
	badEscape bool
}

// scan reads raw JSON text once, outside and inside its strings.
func scan(raw []byte) scanned {
	var s scanned
	d := 0
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			if i+1 < len(raw) && raw[i+1] == 'u' {
				n, ok := unicodeEscape(raw, i)
				takes := ok && escapeTakes(raw, i, n)
				s.badEscape = s.badEscape || !takes
				if takes && isHighSurrogate(n) {
					i += 6 // the low half was checked with the high one
				}
				i += 5
				continue
			}
			i++ // an escaped character, never a quote that ends the string
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			d++
			s.depth = max(s.depth, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return s
}

// unicodeEscape reads the \uXXXX escape at raw[i:].
func unicodeEscape(raw []byte, i int) (rune, bool) {
	if i+6 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
	return rune(n), err == nil
}

// escapeTakes tells whether the escape of n at raw[i:] is one Postgres
// takes: not NUL, and a surrogate only as a high half followed by a low.
func escapeTakes(raw []byte, i int, n rune) bool {
	switch {
	case n == 0:
		return false
	case isHighSurrogate(n):
		if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
			return false
		}
		low, ok := unicodeEscape(raw, i+6)
		return ok && low >= 0xDC00 && low <= 0xDFFF
	case n >= 0xDC00 && n <= 0xDFFF:
		return false // a low half alone
	}
	return true
}

func isHighSurrogate(n rune) bool { return n >= 0xD800 && n <= 0xDBFF }

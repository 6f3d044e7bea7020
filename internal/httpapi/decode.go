package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/wire"
)

// decode reads a JSON body into v. An empty body decodes as {}; unknown
// fields are ignored, as Edge Impulse clients send fields we do not know.
// What a later step would refuse is refused first, with a 400 naming the
// field (wire.CheckJSON): a body that is not UTF-8, nests too deep, holds
// more than one JSON value, or has a NUL character in any string.
func decode(r *http.Request, v any) error {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return errBodyTooLarge
		}
		return apperr.InvalidField("body", "request body could not be read")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := wire.CheckJSON(raw, "body"); err != nil {
		return err
	}
	var wrongType *json.UnmarshalTypeError
	switch err := json.Unmarshal(raw, v); {
	case err == nil:
		return nil
	case errors.As(err, &wrongType):
		field := wireField(reflect.TypeOf(v), wrongType.Field)
		if field == "" {
			field = "body"
		}
		return apperr.InvalidField(field, "%s must be %s, not %s", field, jsonKind(wrongType.Type.Kind().String()), wrongType.Value)
	default:
		return apperr.InvalidField("body", "body is not valid JSON")
	}
}

// wireField is json's dotted path to a field with the names of embedded
// structs left out: they are Go's, not the wire's.
func wireField(t reflect.Type, path string) string {
	if path == "" {
		return ""
	}
	var out []string
	for _, name := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(name); ok && f.Anonymous {
				t = f.Type
				continue // an embedded struct's name is not on the wire
			}
			t = fieldTypeByJSONName(t, name)
		}
		out = append(out, name)
	}
	return strings.Join(out, ".")
}

// fieldTypeByJSONName is the type of t's field (embedded ones included)
// that json names name, or nil.
func fieldTypeByJSONName(t reflect.Type, name string) reflect.Type {
	for _, f := range reflect.VisibleFields(t) {
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f.Type
		}
	}
	return nil
}

// jsonKind is a Go kind as a JSON type, with its article.
func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	default:
		return "a number"
	}
}

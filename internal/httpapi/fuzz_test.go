package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trialsd/trialsd/internal/apperr"
)

// Bodies of any shape decode to a value or to a clean 400/413, never a
// panic; what decodes holds only text Postgres takes (no NUL, valid UTF-8,
// raw JSON included), and converts to a domain request or a 400.
func FuzzDecodeStartTrial(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `{"expirationDate":"2026-01-01T00:00:00Z","notes":"x"}`,
		`{"utmParams":[{"a":1}],"userHasMLModelsInProduction":"no, but we will soon"}`,
		`{"expirationDate":"2026-01-01T00:00:00.123456789+14:00"}`, `{"notes":42}`, `[`, `{"email":null}`,
		`{"redirectUrlQueryParams":"a=%zz"}`, "\x00\xff", `{"notes":"a\u0000b"}`, `{"utmParams":[{"k\u0000":1}]}`,
		"{\"name\":\"\xc3\x28\"}", `{"notes":"x"} {}`,
		`{"utmParams":[{"a":"x\u0000","a":"ok"}]}`, `{"utmParams":[{"a":"\ud800"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		var req startTrialRequest
		if err := decode(r, &req); err != nil {
			if status := statusOf(err); status != 400 && status != 413 {
				t.Fatalf("decode error %v answers %d", err, status)
			}
			return
		}
		postgresTakes(t, reflect.ValueOf(req))
		if _, err := req.toDomain(); err != nil && apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("toDomain: %v is not a 400", err)
		}
		if _, err := redirectURL([]string{"https://studio.example"}, req.RedirectURLOrigin, req.RedirectURLQueryParams, "/x"); err != nil && apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("redirectURL: %v is not a 400", err)
		}
	})
}

// postgresTakes fails the fuzz run when a decoded value holds text Postgres
// refuses: a NUL or invalid UTF-8 in a string, or in raw JSON kept as sent.
func postgresTakes(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			postgresTakes(t, v.Elem())
		}
	case reflect.String:
		if strings.IndexByte(v.String(), 0) >= 0 || !utf8.ValidString(v.String()) {
			t.Fatalf("decoded a string Postgres refuses: %q", v.String())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			postgresTakes(t, v.Field(i))
		}
	case reflect.Slice:
		if raw, ok := v.Interface().(json.RawMessage); ok {
			if !utf8.Valid(raw) || !jsonbTakesEscapes(raw) {
				t.Fatalf("decoded raw JSON Postgres refuses: %q", raw)
			}
			return
		}
		for i := range v.Len() {
			postgresTakes(t, v.Index(i))
		}
	}
}

// uEscape is a run of backslashes before a \u escape's hex digits.
var uEscape = regexp.MustCompile(`(\\+)u([0-9a-fA-F]{4})`)

// jsonbTakesEscapes is the test's own reading of raw JSON's \u escapes,
// apart from the one under test: an odd run of backslashes makes an
// escape; jsonb refuses \u0000 and a surrogate that is not half of a pair.
func jsonbTakesEscapes(raw []byte) bool {
	ms := uEscape.FindAllSubmatchIndex(raw, -1)
	for k := 0; k < len(ms); k++ {
		m := ms[k]
		if (m[3]-m[2])%2 == 0 {
			continue // an escaped backslash, then the text u and four digits
		}
		n, _ := strconv.ParseUint(string(raw[m[4]:m[5]]), 16, 32)
		switch {
		case n == 0, n >= 0xDC00 && n <= 0xDFFF:
			return false
		case n >= 0xD800 && n <= 0xDBFF:
			if k+1 >= len(ms) || ms[k+1][0] != m[1] || ms[k+1][3]-ms[k+1][2] != 1 {
				return false
			}
			low, _ := strconv.ParseUint(string(raw[ms[k+1][4]:ms[k+1][5]]), 16, 32)
			if low < 0xDC00 || low > 0xDFFF {
				return false
			}
			k++
		}
	}
	return true
}

// Forwarded-for chains of any form resolve to an address the peer or the
// chain holds, never a panic.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.2:5000", "198.51.100.1, 10.0.0.9")
	f.Add("[::1]:1", "garbage,,,")
	f.Add("nonsense", "")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := clientAddr(r, trusted)
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		if got == "" && host != "" {
			t.Fatalf("no address for %q %q", remote, xff)
		}
		if got != host {
			if _, err := netip.ParseAddr(got); err != nil {
				t.Fatalf("%q %q resolved to %q, neither the peer nor an address", remote, xff, got)
			}
		}
	})
}

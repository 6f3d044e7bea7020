package console

import (
	"fmt"
	"html/template"
	"time"
)

// funcs are the templates' helpers; every value they return is text, which
// html/template escapes.
var funcs = template.FuncMap{
	"utc": func(v any) string {
		if t, ok := timeOf(v); ok {
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		return "—"
	},
	"rel": relative,
}

// timeOf reads a time or a non-nil time pointer.
func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t != nil {
			return *t, true
		}
	}
	return time.Time{}, false
}

// relative says how far v is from now, in its two largest units: "in 6d
// 23h", "3h 5m ago".
func relative(now time.Time, v any) string {
	t, ok := timeOf(v)
	if !ok {
		return ""
	}
	d := t.Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		s = fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

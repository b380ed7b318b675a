// Package device names the device behind a session for people: "Chrome 156 on
// Linux", "Safari 17 on iPhone", "curl", "latchkey Go client", rather than the
// raw User-Agent header a session records. The account page, GET /sessions
// and `latchkey sessions list` show the same names.
//
// The header is parsed by github.com/mileusna/useragent, which knows browsers,
// their versions and operating systems as well as command-line and library
// clients (curl, Go's net/http); this package only decides how a parsed agent
// reads.
package device

import (
	"strconv"
	"strings"

	"github.com/mileusna/useragent"

	"github.com/latchkey/latchkey/internal/text"
)

// Unknown names a session whose client sent no User-Agent, or one that says
// nothing recognisable.
const Unknown = "Unknown device"

// clientProduct is the product token of latchkey's own Go client (package
// client sends "latchkey-go-client/1").
const clientProduct = "latchkey-go-client"

// maxName bounds a name made from an unrecognised product token.
const maxName = 48

// tools are the non-browser clients with a name of their own, by the product
// token the parser reports.
var tools = map[string]string{
	clientProduct:    "latchkey Go client",
	"Go-http-client": "Go HTTP client",
	"curl":           "curl",
	"Wget":           "Wget",
}

// Name is the device a User-Agent header describes, for people.
func Name(userAgent string) string {
	userAgent = strings.TrimSpace(userAgent)
	if userAgent == "" {
		return Unknown
	}
	ua := useragent.Parse(userAgent)
	if n, ok := tools[ua.Name]; ok {
		return n
	}
	name := strings.TrimSpace(text.Clean(ua.Name, maxName))
	if name == "" || name == useragent.Mozilla {
		return Unknown
	}
	if ua.OS == "" {
		// A library, a tool or a crawler: its product name says enough.
		return name
	}
	if ua.VersionNo.Major > 0 {
		name += " " + strconv.Itoa(ua.VersionNo.Major)
	}
	return name + " on " + place(ua)
}

// place is where a browser runs: the phone or tablet when the header names
// one Apple sells under a name people know, otherwise the operating system.
func place(ua useragent.UserAgent) string {
	switch ua.Device {
	case "iPhone", "iPad", "iPod":
		return ua.Device
	}
	return ua.OS
}

package provider

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/text"
)

// Config configures one provider. The operator writes it; nothing in it ever
// comes from a request.
type Config struct {
	// Name is the operator's name for the provider ("google"): what POST
	// /login's "provider" field and the account page's buttons use. Lower-case
	// letters, digits, '-' and '_', at most 32 bytes.
	Name string
	// Issuer is the provider's issuer URL, compared byte for byte with the
	// discovery document's "issuer" and every ID token's "iss". https, or http
	// on a loopback host (for development and tests).
	Issuer string
	// ClientIDs are this application's client ids at the provider: an ID
	// token's "aud" must name one of them. The first is used for the browser
	// sign-in.
	ClientIDs []string
	// ClientSecret is the first client id's secret, for the browser sign-in of
	// a confidential client; empty for a public client (PKCE alone).
	ClientSecret string
	// Algorithms are the signature algorithms accepted; nil means
	// DefaultAlgorithms. Only asymmetric ones are allowed.
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, iat and nbf; zero means
	// DefaultLeeway, negative none. At most MaxLeeway.
	Leeway time.Duration
	// RawNonce says the provider's native SDK puts the app's nonce in the
	// token as it is; by default (as Apple's and Google's SDKs are used) the
	// token carries its hex SHA-256 and the app sends latchkey the nonce
	// itself, which then never appears in the token. Only one form is
	// accepted: accepting the token's own nonce back would let anyone
	// holding the token pass the check.
	RawNonce bool
}

// Defaults and bounds.
const (
	DefaultLeeway = time.Minute
	MaxLeeway     = 5 * time.Minute
)

// DefaultAlgorithms lists the asymmetric JWS algorithms an ID token may be
// signed with. HMAC algorithms are never accepted: their key would be the
// client secret or, worse, public material.
func DefaultAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// check validates c and fills its defaults.
func (c *Config) check() error {
	if !namePattern.MatchString(c.Name) {
		return fmt.Errorf("provider: name %q is not 1-32 lower-case letters, digits, '-' or '_'", c.Name)
	}
	if err := checkIssuer(c.Issuer); err != nil {
		return fmt.Errorf("provider %s: %w", c.Name, err)
	}
	if len(c.ClientIDs) == 0 {
		return fmt.Errorf("provider %s: at least one client_id is required", c.Name)
	}
	for _, id := range c.ClientIDs {
		if id == "" || len(id) > 256 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("provider %s: client_id %q is empty, too long or has control characters", c.Name, id)
		}
	}
	if c.Algorithms == nil {
		c.Algorithms = DefaultAlgorithms()
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(DefaultAlgorithms(), a) {
			return fmt.Errorf("provider %s: algorithm %q is not an asymmetric JWS algorithm (allowed: %s)", c.Name, a, strings.Join(DefaultAlgorithms(), ", "))
		}
	}
	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	case c.Leeway > MaxLeeway:
		return fmt.Errorf("provider %s: leeway %s is longer than %s", c.Name, c.Leeway, MaxLeeway)
	}
	return nil
}

// checkIssuer accepts an absolute https URL without query or fragment, or an
// http one on a loopback host.
func checkIssuer(iss string) error {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(iss, "?") || strings.HasSuffix(iss, "#") {
		return fmt.Errorf("issuer %q is not an absolute URL without user, query or fragment", iss)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("issuer %q must use https (plain http only on a loopback host)", iss)
	default:
		return fmt.Errorf("issuer %q must be an https URL", iss)
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseFlag reads one --provider value:
//
//	NAME=ISSUER_URL,client_id=ID[,client_id=ID2][,client_secret=SECRET|client_secret_file=PATH][,leeway=DURATION][,nonce=hashed|raw]
//
// A value that cannot work (a bad name or URL, no client id, an unknown key,
// an unreadable secret file) is an error that says what to change.
func ParseFlag(v string) (Config, error) {
	name, rest, ok := strings.Cut(v, "=")
	if !ok {
		return Config{}, errors.New("provider: want NAME=ISSUER_URL,client_id=ID[,…]")
	}
	parts := strings.Split(rest, ",")
	c := Config{Name: strings.TrimSpace(name), Issuer: strings.TrimSpace(parts[0])}
	for i, p := range parts[1:] {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || val == "" {
			// Never echo the part: it may be a piece of a secret.
			return Config{}, fmt.Errorf("provider %s: part %d after the issuer is not key=value (a secret containing ',' or ';' belongs in client_secret_file)", c.Name, i+1)
		}
		switch k {
		case "client_id":
			c.ClientIDs = append(c.ClientIDs, val)
		case "client_secret":
			c.ClientSecret = val
		case "client_secret_file":
			b, err := os.ReadFile(val)
			if err != nil {
				return Config{}, fmt.Errorf("provider %s: client_secret_file: %w", c.Name, err)
			}
			c.ClientSecret = strings.TrimSpace(string(b))
		case "leeway":
			d, err := time.ParseDuration(val)
			if err != nil {
				return Config{}, fmt.Errorf("provider %s: leeway: %w", c.Name, err)
			}
			c.Leeway = d
			if d == 0 {
				c.Leeway = -1 // an explicit zero: none
			}
		case "nonce":
			switch val {
			case "raw":
				c.RawNonce = true
			case "hashed":
			default:
				return Config{}, fmt.Errorf("provider %s: nonce=%q: want hashed or raw", c.Name, val)
			}
		default:
			return Config{}, fmt.Errorf("provider %s: unknown key %s (want client_id, client_secret, client_secret_file, leeway or nonce)", c.Name, text.Quote(k, 64))
		}
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// String describes c without its secret.
func (c Config) String() string {
	s := c.Name + "=" + c.Issuer + ",client_id=" + strings.Join(c.ClientIDs, ",client_id=")
	if c.ClientSecret != "" {
		s += ",client_secret=[hidden]"
	}
	return s
}

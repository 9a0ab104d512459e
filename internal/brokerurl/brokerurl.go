// Package brokerurl parses the MQTT broker URLs that configs and flags
// name, the same way in every binary: tcp://host[:port] or
// ssl://host[:port], with mqtt://, mqtts:// and tls:// as aliases and the
// port defaulting to 1883 (tcp) or 8883 (ssl).
package brokerurl

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Schemes after normalisation.
const (
	TCP = "tcp"
	SSL = "ssl"
)

// Default ports.
const (
	DefaultTCPPort = "1883"
	DefaultSSLPort = "8883"
)

// Parse parses s and normalises it: the scheme becomes tcp or ssl and a
// missing port its default. Credentials, paths and queries in the URL are
// errors (they belong in the config's username and password, and paho
// would ignore or mangle them). Errors quote s and say what to write.
func Parse(s string) (*url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("broker is missing: want tcp://host:1883 or ssl://host:8883")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("broker %q is not a URL: want tcp://host:1883 or ssl://host:8883", s)
	}
	port := DefaultTCPPort
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		u.Scheme = TCP
	case "ssl", "mqtts", "tls":
		u.Scheme, port = SSL, DefaultSSLPort
	case "":
		return nil, fmt.Errorf("broker %q has no scheme: want tcp://%s or ssl://%s", s, s, s)
	default:
		return nil, fmt.Errorf("broker %q: scheme %q is not supported: use tcp:// or ssl:// (mqtt://, mqtts:// and tls:// are aliases)", s, u.Scheme)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("broker %q has no host: want %s://host:%s", s, u.Scheme, port)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return nil, fmt.Errorf("broker %q: host %q is not a name or an IP address (write IPv6 addresses in brackets: %s://[::1]:%s)", s, host, u.Scheme, port)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("broker %q: port %q: want 1..65535", s, p)
		}
	}
	if u.User != nil {
		return nil, fmt.Errorf("broker %q has credentials in the URL: set username and password instead", s)
	}
	if p := strings.Trim(u.Path, "/"); p != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("broker %q has a path or query: want %s://host:%s only", s, u.Scheme, port)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

// IsTLS reports whether a normalised URL (from Parse) asks for TLS.
func IsTLS(u *url.URL) bool { return u.Scheme == SSL }

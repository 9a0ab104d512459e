package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"

	"github.com/tributary-iot/tributary/edge/devicecreds"
	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
)

// DevicesFile is the embedded broker's device password file (argon2id
// hashes; `tributary-agent device add|remove|list`) in the data folder.
func (c Config) DevicesFile() string { return filepath.Join(c.Data, devicecreds.FileName) }

// Check is Validate plus everything that depends on files: the device
// password file and who may therefore connect, the token file, the TLS
// files. Call it on a config with defaults applied; it reports every
// problem at once. New runs it before opening anything, and
// `tributary-agent validate` prints it.
func (c Config) Check() error {
	var errs []error
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.MQTT.Broker == "" && c.Data != "" {
		ds, err := devicecreds.Load(c.DevicesFile())
		if err != nil {
			add("mqtt: device passwords: %v", err)
		}
		auth := len(ds) > 0 || c.MQTT.ClientCAFile != ""
		if err == nil && !auth && !c.MQTT.AllowAnonymous && c.MQTT.Listen != "" && !intake.LoopbackAddr(c.MQTT.Listen) {
			add("mqtt.listen: %q is reachable from the network and no device authentication is configured: "+
				"give devices passwords (`tributary-agent device add ID -data %s`) or set mqtt.client_ca_file, "+
				"set mqtt.allow_anonymous: true to accept anonymous devices anyway, or listen on 127.0.0.1", c.MQTT.Listen, c.Data)
		}
		if err == nil && !auth && c.MQTT.StrictIdentity != nil && *c.MQTT.StrictIdentity {
			add("mqtt.strict_identity: needs device passwords (tributary-agent device add) or mqtt.client_ca_file: an anonymous device has no verified id")
		}
		for _, d := range ds {
			if d.ID == c.Gateway {
				add("mqtt: device %q has a password, but it is the gateway's own id, reserved for the agent: "+
					"`tributary-agent device remove %s -data %s`", d.ID, d.ID, c.Data)
			}
		}
	}
	if c.Cloud.TokenFile != "" && c.Cloud.Token == "" {
		if _, err := c.token(slog.New(slog.DiscardHandler)); err != nil {
			errs = append(errs, err)
		}
	}
	load := func(name string, f func() (any, error)) {
		if _, err := f(); err != nil {
			add("%s: %v", name, err)
		}
	}
	if !c.Cloud.TLS.IsZero() {
		load("cloud.tls", func() (any, error) { return c.Cloud.TLS.Load() })
	}
	if c.MQTT.Broker != "" && !c.MQTT.TLS.IsZero() {
		load("mqtt.tls", func() (any, error) { return c.MQTT.TLS.Load() })
	}
	if s := c.embeddedTLS(); c.MQTT.Broker == "" && !s.IsZero() && s.Validate() == nil {
		load("mqtt.tls", func() (any, error) { return s.Load() })
	}
	return errors.Join(errs...)
}

// embeddedTLS is the embedded broker's TLS.
func (c Config) embeddedTLS() tlsfiles.Server {
	return tlsfiles.Server{CertFile: c.MQTT.TLS.CertFile, KeyFile: c.MQTT.TLS.KeyFile, ClientCAFile: c.MQTT.ClientCAFile}
}

// Warnings lists what is allowed but unsafe in c (defaults applied): the
// agent logs each at start, and `tributary-agent validate` prints them.
func (c Config) Warnings() []string {
	var w []string
	if c.MQTT.Broker == "" && c.MQTT.AllowAnonymous {
		w = append(w, "mqtt.allow_anonymous: true: anyone who can reach "+c.MQTT.Listen+" can publish and subscribe without credentials")
	}
	if u, err := url.Parse(c.Cloud.URL); err == nil && u.Scheme == "http" && !uplink.LoopbackHost(u.Hostname()) {
		w = append(w, "cloud.insecure: true: the token and the readings cross the network to "+u.Host+" unencrypted")
	}
	if c.Cloud.Token != "" && !c.tokenFromEnv {
		w = append(w, "cloud.token: the secret is in the config or on the command line (visible in ps): "+
			"prefer cloud.token_file (-token-file), $"+TokenEnv+" or the systemd credential "+CredentialName)
	}
	if c.Cloud.TokenFile != "" {
		var buf warnBuffer
		_, _ = c.token(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if buf.n > 0 {
			w = append(w, "cloud.token_file "+c.Cloud.TokenFile+" is readable by its group or by others: chmod 600 it")
		}
	}
	return w
}

// warnBuffer counts the log lines written to it.
type warnBuffer struct{ n int }

func (b *warnBuffer) Write(p []byte) (int, error) { b.n++; return len(p), nil }

var _ io.Writer = (*warnBuffer)(nil)

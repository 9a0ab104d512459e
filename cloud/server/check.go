package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tributary-iot/tributary/cloud/alerts"
	"github.com/tributary-iot/tributary/cloud/auth"
)

// WebhookSecretEnv sets anomaly.webhook_secret from the environment.
const WebhookSecretEnv = "TRIBUTARY_WEBHOOK_SECRET"

// CheckOptions tune Check.
type CheckOptions struct {
	// NoFiles skips reading the files the config names (TLS certificates
	// and keys, admin.token_files, anomaly.webhook_secret_file): for a
	// config written for another machine.
	NoFiles bool
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
}

// Check is what a start checks before it binds a port or writes a file,
// with every problem reported at once: Validate; the admin listener's
// exposure given the admin users already in the data folder; and, unless
// opts.NoFiles, that the TLS files, token files and webhook secret load.
// Call it on a config with defaults applied.
func (c Config) Check(opts CheckOptions) error {
	errs := []error{c.Validate()}
	users, err := CountUsers(c.Data)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, adminExposed(c.Admin, users))
	if opts.NoFiles {
		return errors.Join(errs...)
	}
	add := func(setting string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", setting, err))
		}
	}
	_, err = c.TLS.Load()
	add("tls", err)
	if c.KinesisListen != "off" && c.Stream.Backend == BackendEmbedded {
		_, err = c.KinesisAPI.TLS.Load()
		add("kinesis_api.tls", err)
	}
	if c.Admin.Listen != "off" {
		_, err = c.Admin.TLS.Load()
		add("admin.tls", err)
		for _, f := range c.Admin.TokenFiles {
			_, err := readTokenFile(f)
			errs = append(errs, err)
		}
	}
	_, err = c.webhookSecret(opts.Getenv)
	errs = append(errs, err)
	return errors.Join(errs...)
}

// CountUsers counts the admin users in a data folder's users.db (0 when
// there is none yet).
func CountUsers(data string) (int, error) {
	path := filepath.Join(data, UsersFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || data == "" {
		return 0, nil
	}
	u, err := auth.OpenUsers(path, auth.Options{})
	if err != nil {
		return 0, err
	}
	return u.Len(), nil
}

// webhookSecret resolves the webhook's signing secret: anomaly.webhook_secret,
// anomaly.webhook_secret_file or $TRIBUTARY_WEBHOOK_SECRET, at most one
// of them (nil: unsigned).
func (c Config) webhookSecret(getenv func(string) string) ([]byte, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	a := c.Anomaly
	env := getenv(WebhookSecretEnv)
	n := 0
	for _, s := range []string{a.WebhookSecret, a.WebhookSecretFile, env} {
		if s != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, fmt.Errorf("anomaly.webhook_secret, anomaly.webhook_secret_file and $%s: set at most one", WebhookSecretEnv)
	case a.WebhookSecret != "":
		return []byte(a.WebhookSecret), nil
	case env != "":
		return []byte(env), nil
	case a.WebhookSecretFile == "":
		return nil, nil
	}
	b, err := os.ReadFile(a.WebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("anomaly.webhook_secret_file: %w", err)
	}
	if s := strings.TrimRight(string(b), "\r\n"); s != "" {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("anomaly.webhook_secret_file: %s is empty", a.WebhookSecretFile)
}

// Redacted is c with its secrets replaced by "REDACTED", for printing:
// the Kinesis API's secret keys, the Kinesis backend's secret key, the
// admin token hashes, the webhook secret, and the webhook and Kinesis
// endpoint URLs' user info and query values.
func (c Config) Redacted() Config {
	const r = "REDACTED"
	if len(c.KinesisAPI.Credentials) > 0 {
		creds := make(map[string]string, len(c.KinesisAPI.Credentials))
		for id := range c.KinesisAPI.Credentials {
			creds[id] = r
		}
		c.KinesisAPI.Credentials = creds
	}
	if c.Stream.Kinesis.SecretAccessKey != "" {
		c.Stream.Kinesis.SecretAccessKey = r
	}
	if c.Stream.Kinesis.Endpoint != "" {
		c.Stream.Kinesis.Endpoint = alerts.RedactURL(c.Stream.Kinesis.Endpoint)
	}
	if len(c.Admin.Tokens) > 0 {
		toks := make([]string, len(c.Admin.Tokens))
		for i := range toks {
			toks[i] = TokenHashPrefix + r
		}
		c.Admin.Tokens = toks
	}
	if c.Anomaly.WebhookSecret != "" {
		c.Anomaly.WebhookSecret = r
	}
	if c.Anomaly.Webhook != "" {
		c.Anomaly.Webhook = alerts.RedactURL(c.Anomaly.Webhook)
	}
	return c
}

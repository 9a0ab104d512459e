package devicecreds

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// FileName is the device file's name in the agent's data folder.
const FileName = "devices.json"

const (
	fileFormat = 1
	// maxFileBytes and maxDevices bound what Load reads.
	maxFileBytes = 64 << 20
	maxDevices   = 100_000
)

// Errors of Add and Remove; errors wrapping them name the device.
var (
	ErrExists   = errors.New("devicecreds: device already has a password")
	ErrNotFound = errors.New("devicecreds: no such device")
)

// Device is one device's entry in the file.
type Device struct {
	ID   string `json:"id"`
	Hash string `json:"hash"` // argon2id PHC string
	// Admin devices are exempt from strict identity: they may publish and
	// subscribe under every device (consoles, debugging subscribers).
	Admin   bool      `json:"admin,omitempty"`
	Created time.Time `json:"created"`
}

type file struct {
	Format  int      `json:"format"`
	Devices []Device `json:"devices"`
}

// Load reads the device file at path, checking every entry; a missing file
// holds no device.
func Load(path string) ([]Device, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devicecreds: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("devicecreds: %w", err)
	}
	bad := func(format string, args ...any) ([]Device, error) {
		return nil, fmt.Errorf("devicecreds: %s: "+format, append([]any{path}, args...)...)
	}
	if len(b) > maxFileBytes {
		return bad("larger than %d bytes", maxFileBytes)
	}
	var fl file
	if err := json.Unmarshal(b, &fl); err != nil {
		return bad("%v", err)
	}
	if fl.Format != fileFormat {
		return bad("format %d, want %d", fl.Format, fileFormat)
	}
	if len(fl.Devices) > maxDevices {
		return bad("%d devices, at most %d", len(fl.Devices), maxDevices)
	}
	seen := make(map[string]bool, len(fl.Devices))
	for i, d := range fl.Devices {
		if err := protocol.CheckDeviceID(d.ID); err != nil {
			return bad("entry %d: %v", i+1, err)
		}
		if seen[d.ID] {
			return bad("device %q appears twice", d.ID)
		}
		seen[d.ID] = true
		if _, err := parseHash(d.Hash); err != nil {
			return bad("device %q: %v", d.ID, err)
		}
	}
	return fl.Devices, nil
}

// List returns the devices of the file at path, sorted by id.
func List(path string) ([]Device, error) {
	ds, err := Load(path)
	slices.SortFunc(ds, func(a, b Device) int { return strings.Compare(a.ID, b.ID) })
	return ds, err
}

// Add stores id with the hash of password (Params p) in the file at path,
// creating it if needed. A device that has a password already gives
// ErrExists: remove it first.
func Add(path, id string, password []byte, admin bool, p Params) error {
	if err := protocol.CheckDeviceID(id); err != nil {
		return fmt.Errorf("devicecreds: %w", err)
	}
	if len(password) == 0 {
		return errors.New("devicecreds: empty password")
	}
	h, err := Hash(password, p)
	if err != nil {
		return err
	}
	return change(path, func(ds []Device) ([]Device, error) {
		if slices.ContainsFunc(ds, func(d Device) bool { return d.ID == id }) {
			return nil, fmt.Errorf("%w: %s (remove it first to set a new password)", ErrExists, id)
		}
		if len(ds) >= maxDevices {
			return nil, fmt.Errorf("devicecreds: %d devices already, at most %d", len(ds), maxDevices)
		}
		return append(ds, Device{ID: id, Hash: h, Admin: admin, Created: time.Now().UTC().Truncate(time.Second)}), nil
	})
}

// Remove deletes id from the file at path.
func Remove(path, id string) error {
	return change(path, func(ds []Device) ([]Device, error) {
		i := slices.IndexFunc(ds, func(d Device) bool { return d.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return slices.Delete(ds, i, i+1), nil
	})
}

// change applies fn to the file's devices under the file's lock and
// replaces the file atomically.
func change(path string, fn func([]Device) ([]Device, error)) error {
	unlock, err := lock(path + ".lock")
	if err != nil {
		return fmt.Errorf("devicecreds: lock: %w", err)
	}
	defer unlock()
	ds, err := Load(path)
	if err != nil {
		return err
	}
	if ds, err = fn(ds); err != nil {
		return err
	}
	b, err := json.MarshalIndent(file{Format: fileFormat, Devices: ds}, "", "  ")
	if err != nil {
		return fmt.Errorf("devicecreds: %w", err)
	}
	return writeAtomic(path, append(b, '\n'))
}

// writeAtomic writes b to a temporary file beside path, syncs it and
// renames it over path, then syncs the folder.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("devicecreds: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing there
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("devicecreds: writing %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

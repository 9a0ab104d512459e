package boltfile_test

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"testing"
)

// verifiedBBolt is the bbolt release whose file format internal/boltfile/verify.go models
// (meta page layout, magic and version 2, page header, branch and leaf
// elements, bucket header, inline buckets, freelist page, and how DB.meta
// chooses between the two meta pages). The verifier reads the file bytes
// itself, so nothing in bbolt's API breaks when that format changes: this
// test is the tripwire.
const verifiedBBolt = "v1.5.0"

const bboltModule = "go.etcd.io/bbolt"

// TestVerifierMatchesBBoltVersion fails when the bbolt in the build is not
// the one internal/boltfile/verify.go was checked against.
func TestVerifierMatchesBBoltVersion(t *testing.T) {
	got, from := bboltVersion(t)
	if got == verifiedBBolt {
		return
	}
	t.Fatalf(`%s is %s (from %s), but internal/boltfile/verify.go models the file format of %s.
internal/boltfile/verify.go parses bbolt's file with its own code, so a format change would not break the build;
it would make Open reject good files or let bbolt map damaged ones. Before changing verifiedBBolt:
  - read bbolt's changes between %s and %s for internal/common (page.go, meta.go, bucket.go,
    inode.go: the magic, the version, the meta, page, element and bucket header layouts),
    db.go (DB.meta: which meta page wins) and the freelist encoding (internal/freelist);
  - update the constants and parsing in internal/boltfile/verify.go to match;
  - run go test -race ./edge/queue/ (TestOpenDamagedFiles, FuzzOpen's seeds, TestPowerFailure).`,
		bboltModule, got, from, verifiedBBolt, verifiedBBolt, got)
}

// bboltVersion returns the version of bbolt linked into the test binary
// or, when the binary carries no module information, the one go.mod
// requires.
func bboltVersion(t *testing.T) (version, from string) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path != bboltModule {
				continue
			}
			if dep.Replace != nil {
				return dep.Replace.Version, "debug.ReadBuildInfo (replaced by " + dep.Replace.Path + ")"
			}
			return dep.Version, "debug.ReadBuildInfo"
		}
	}
	gomod := filepath.Join("..", "..", "go.mod")
	b, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatalf("no build info and no go.mod: %v", err)
	}
	if regexp.MustCompile(`(?m)^\s*(?:replace\s+)?` + regexp.QuoteMeta(bboltModule) + `(\s+v\S+)?\s+=>`).Match(b) {
		t.Fatalf("%s replaces %s: check the replacement's file format against internal/boltfile/verify.go, then teach this test its version", gomod, bboltModule)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(bboltModule) + `\s+(v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s does not require %s", gomod, bboltModule)
	}
	return string(m[1]), gomod
}

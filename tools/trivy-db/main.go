// Command trivy-db builds a small, real Trivy vulnerability DB (schema 2) from GitHub Security
// Advisories in the OSV format of github/advisory-database, and publishes it as the OCI artifact
// Trivy downloads with `--db-repository`.
//
// How the DB is written: with trivy-db's own build pipeline (pkg/vulndb: insert, optimize, cleanup)
// and its own GHSA importer (pkg/vulnsrc/ghsa, which parses OSV through pkg/vulnsrc/osv), at the
// exact trivy-db version Trivy v0.74.0 pins. Writing the buckets by hand with pkg/db/pkg/types was
// the alternative; the importer was chosen because it is the code that produces the public DB, so
// range parsing (introduced/fixed/last_affected), severities, data sources and the vulnerability
// details come out as Trivy expects them, with nothing re-implemented here. Its two preconditions
// are met below: its package init runs `go list std` (so `go` must be on PATH), and it walks
// <root>/cocoapods-specs/Specs (an empty folder here: no Swift advisories are imported).
//
// The artifact: an OCI image manifest whose config is `{}` with media type
// application/vnd.aquasec.trivy.config.v1+json and whose single layer
// (application/vnd.aquasec.trivy.db.layer.v1.tar+gzip) is a flat tar.gz of trivy.db and
// metadata.json annotated `org.opencontainers.image.title: db.tar.gz` (Trivy names the downloaded
// file after that annotation and refuses a layer without it).
//
// Determinism: metadata.json's UpdatedAt is the newest `modified` time among the advisories and
// NextUpdate is fixed far in the future (so Trivy never considers the DB stale and never tries to
// refresh it); the tar entries carry fixed times, owners and modes. The bbolt file itself is not
// byte-for-byte reproducible, so the publisher records the hash of its inputs in a manifest
// annotation (-source-hash) and scripts/trivy-db.sh compares that instead of a digest.
//
// Usage:
//
//	trivy-db -advisories DIR [-output DIR] [-ref REF] [-push=false] [-source-hash HASH]
//	         [-username USER -password-file FILE]
//
// Credentials: -username with -password-file (the password never appears on a command line), or
// else the Docker keychain ($DOCKER_CONFIG/config.json). TLS: the system roots plus SSL_CERT_FILE,
// which must include the local registry's CA. Logs go to stderr; on success the pushed
// `ref@digest` is printed on stdout.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	trivylog "github.com/aquasecurity/trivy-db/pkg/log"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy-db/pkg/vulndb"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc"
	"github.com/aquasecurity/trivy-db/pkg/vulnsrc/ghsa"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	// Media types and the title annotation Trivy v0.74.0 expects (pkg/db and pkg/oci there).
	configMediaType = "application/vnd.aquasec.trivy.config.v1+json"
	layerMediaType  = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
	titleAnnotation = "org.opencontainers.image.title"
	layerTitle      = "db.tar.gz"

	// SourceHashAnnotation carries the hash of the inputs (advisories + this program) the artifact
	// was built from; scripts/trivy-db.sh reads it back to skip a rebuild.
	SourceHashAnnotation = "org.image-factory.trivy-db.source-hash"

	defaultRef = "127.0.0.1:5443/image-factory/trivy-db:2"
)

// nextUpdate is far in the future: Trivy re-downloads a DB only once NextUpdate has passed.
var nextUpdate = time.Date(2099, time.December, 31, 0, 0, 0, 0, time.UTC)

// advisoryFile is the part of an OSV/GHSA document this program reads itself (the importer reads all).
type advisoryFile struct {
	rel      string
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

type options struct {
	advisories   string
	output       string
	ref          string
	push         bool
	sourceHash   string
	username     string
	passwordFile string
	allowRemote  bool
}

func main() {
	var o options
	flag.StringVar(&o.advisories, "advisories", "", "folder laid out like github/advisory-database's advisories/ (github-reviewed/YYYY/MM/GHSA-*/GHSA-*.json)")
	flag.StringVar(&o.output, "output", "", "folder for trivy.db, metadata.json and db.tar.gz (default: a temporary folder, removed at exit)")
	flag.StringVar(&o.ref, "ref", defaultRef, "reference the artifact is pushed to")
	flag.BoolVar(&o.push, "push", true, "push the artifact to -ref")
	flag.StringVar(&o.sourceHash, "source-hash", "", "value of the "+SourceHashAnnotation+" manifest annotation")
	flag.StringVar(&o.username, "username", "", "registry user (with -password-file); default: the Docker keychain")
	flag.StringVar(&o.passwordFile, "password-file", "", "file holding the registry password")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow pushing to a registry that is not on loopback")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)
	trivylog.SetLogger(logger)

	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "trivy-db: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.advisories == "" {
		return errors.New("-advisories is required")
	}
	advisoriesDir, err := filepath.Abs(o.advisories)
	if err != nil {
		return err
	}
	files, err := readAdvisories(advisoriesDir)
	if err != nil {
		return err
	}
	updatedAt := files[0].Modified
	for _, f := range files {
		if f.Modified.After(updatedAt) {
			updatedAt = f.Modified
		}
	}
	updatedAt = updatedAt.UTC()

	out := o.output
	if out == "" {
		tmp, err := os.MkdirTemp("", "trivy-db-out-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		out = tmp
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	start := time.Now()
	if err := buildDB(advisoriesDir, files, out, updatedAt); err != nil {
		return err
	}
	archive, err := tarGz(out, updatedAt, db.Path(""), metadata.Path(""))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, layerTitle), archive, 0o644); err != nil {
		return err
	}
	slog.Info("DB built", "advisories", len(files), "updated_at", updatedAt.Format(time.RFC3339),
		"next_update", nextUpdate.Format(time.RFC3339), "archive_bytes", len(archive), "output", out,
		"seconds", time.Since(start).Seconds())

	if !o.push {
		return nil
	}
	start = time.Now()
	pushed, err := push(o, archive, updatedAt)
	if err != nil {
		return err
	}
	slog.Info("artifact pushed", "ref", pushed, "seconds", time.Since(start).Seconds())
	fmt.Println(pushed)
	return nil
}

// readAdvisories finds every *.json under dir, sorted by path, and checks it is a GHSA document.
func readAdvisories(dir string) ([]advisoryFile, error) {
	var files []advisoryFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var f advisoryFile
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !strings.HasPrefix(f.ID, "GHSA-") || f.Modified.IsZero() || len(f.Affected) == 0 {
			return fmt.Errorf("%s: not a GitHub Security Advisory in OSV format (id %q)", path, f.ID)
		}
		if f.rel, err = filepath.Rel(dir, path); err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no advisory JSON under %s", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, nil
}

// buildDB stages the advisories where the GHSA importer looks for them and runs trivy-db's build
// pipeline, then checks that every advisory landed in the DB.
func buildDB(advisoriesDir string, files []advisoryFile, out string, updatedAt time.Time) error {
	if _, err := exec.LookPath("go"); err != nil {
		// Only reached if the importer's init did not already fail: say what is needed.
		return errors.New("`go` must be on PATH: trivy-db's GHSA importer runs `go list std`")
	}
	root, err := os.MkdirTemp("", "trivy-db-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	for _, f := range files {
		dst := filepath.Join(root, "ghsa", "advisories", f.rel)
		if err := copyFile(filepath.Join(advisoriesDir, f.rel), dst); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "cocoapods-specs", "Specs"), 0o755); err != nil {
		return err
	}
	// trivy-db's file walker loads patches from ./overrides: run where there are none.
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	defer func() { _ = os.Chdir(wd) }()

	for _, p := range []string{db.Path(out), metadata.Path(out)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := db.Init(out); err != nil {
		return fmt.Errorf("db init: %w", err)
	}
	defer func() { _ = db.Close() }()

	src := ghsa.NewVulnSrc()
	vdb := vulndb.New(root, out, nextUpdate.Sub(updatedAt),
		vulndb.WithClock(clocktesting.NewFakeClock(updatedAt)),
		vulndb.WithVulnSrcs(map[types.SourceID]vulnsrc.VulnSrc{src.Name(): src}))
	if err := vdb.Build([]string{string(src.Name())}); err != nil {
		return fmt.Errorf("trivy-db build: %w", err)
	}
	if err := verify(files); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	meta, err := metadata.NewClient(out).Get()
	if err != nil {
		return err
	}
	if meta.Version != db.SchemaVersion || !meta.NextUpdate.Equal(nextUpdate) || !meta.UpdatedAt.Equal(updatedAt) {
		return fmt.Errorf("unexpected metadata.json: %+v", meta)
	}
	return nil
}

// verify checks, through trivy-db's own read API, that each advisory's vulnerability (its CVE alias,
// else its GHSA id, as the importer keys it) has details and that each affected package has an
// advisory in the data source bucket of its ecosystem.
func verify(files []advisoryFile) error {
	dbc := db.Config{}
	for _, f := range files {
		id := f.ID
		for _, a := range f.Aliases {
			if strings.HasPrefix(a, "CVE-") {
				id = a
				break
			}
		}
		vuln, err := dbc.GetVulnerability(id)
		if err != nil {
			return fmt.Errorf("%s: vulnerability %s not in the DB: %w", f.rel, id, err)
		}
		seen := map[string]bool{}
		for _, a := range f.Affected {
			if seen[a.Package.Name] {
				continue
			}
			seen[a.Package.Name] = true
			bucket := fmt.Sprintf("%s::GitHub Security Advisory %s", strings.ToLower(a.Package.Ecosystem), a.Package.Ecosystem)
			advs, err := dbc.GetAdvisories(bucket, a.Package.Name)
			if err != nil {
				return fmt.Errorf("%s: advisories of %s: %w", f.rel, a.Package.Name, err)
			}
			found := false
			for _, adv := range advs {
				if adv.VulnerabilityID == id {
					found = true
					slog.Info("advisory", "id", f.ID, "vulnerability", id, "bucket", bucket, "package", a.Package.Name,
						"vulnerable", strings.Join(adv.VulnerableVersions, " || "), "patched", strings.Join(adv.PatchedVersions, ", "),
						"severity", f.DatabaseSpecific.Severity, "vendor_severity", vuln.VendorSeverity)
				}
			}
			if !found {
				return fmt.Errorf("%s: no advisory for %s in bucket %q", f.rel, a.Package.Name, bucket)
			}
		}
	}
	// The whole top-level bucket list, for the log: data-source, vulnerability and one per ecosystem.
	return db.Config{}.BatchUpdate(func(tx *bolt.Tx) error {
		var names []string
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error { names = append(names, string(name)); return nil })
		slog.Info("DB buckets", "buckets", strings.Join(names, ", "))
		return nil
	})
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// tarGz packs the named files of dir, flat, with fixed headers (no owner names, fixed time).
func tarGz(dir string, mtime time.Time, names ...string) ([]byte, error) {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(gz)
	for _, n := range names {
		n = filepath.Base(n)
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(b)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(b); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// rawManifest is a manifest pushed as is (remote.Put needs RawManifest and MediaType).
type rawManifest struct {
	body      []byte
	mediaType ggcrtypes.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)            { return m.body, nil }
func (m rawManifest) MediaType() (ggcrtypes.MediaType, error) { return m.mediaType, nil }

func push(o options, archive []byte, updatedAt time.Time) (string, error) {
	ref, err := name.ParseReference(o.ref)
	if err != nil {
		return "", fmt.Errorf("reference %q: %w", o.ref, err)
	}
	if !o.allowRemote && !isLoopback(ref.Context().RegistryStr()) {
		return "", fmt.Errorf("registry %s is not on loopback (pass -allow-remote to push there)", ref.Context().RegistryStr())
	}
	auth, err := authOption(o)
	if err != nil {
		return "", err
	}
	opts := []remote.Option{auth}

	config := static.NewLayer([]byte("{}"), configMediaType)
	layer := static.NewLayer(archive, layerMediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(ref.Context(), l, opts...); err != nil {
			return "", fmt.Errorf("upload blob: %w", err)
		}
	}
	cd, err := descriptor(config, nil)
	if err != nil {
		return "", err
	}
	ld, err := descriptor(layer, map[string]string{titleAnnotation: layerTitle})
	if err != nil {
		return "", err
	}
	annotations := map[string]string{
		"org.opencontainers.image.created":     updatedAt.Format(time.RFC3339),
		"org.opencontainers.image.description": "Trivy vulnerability DB (schema 2) built offline from GitHub Security Advisories by tools/trivy-db",
	}
	if o.sourceHash != "" {
		annotations[SourceHashAnnotation] = o.sourceHash
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     ggcrtypes.OCIManifestSchema1,
		Config:        cd,
		Layers:        []v1.Descriptor{ld},
		Annotations:   annotations,
	}
	body, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	if err := remote.Put(ref, rawManifest{body: body, mediaType: ggcrtypes.OCIManifestSchema1}, opts...); err != nil {
		return "", fmt.Errorf("push manifest: %w", err)
	}
	digest, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(digest.String()).String(), nil
}

func descriptor(l v1.Layer, annotations map[string]string) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: d, Annotations: annotations}, nil
}

func authOption(o options) (remote.Option, error) {
	if o.username == "" && o.passwordFile == "" {
		return remote.WithAuthFromKeychain(authn.DefaultKeychain), nil
	}
	if o.username == "" || o.passwordFile == "" {
		return nil, errors.New("-username and -password-file go together")
	}
	b, err := os.ReadFile(o.passwordFile)
	if err != nil {
		return nil, err
	}
	password := strings.TrimRight(string(b), "\r\n")
	if password == "" {
		return nil, fmt.Errorf("%s is empty", o.passwordFile)
	}
	return remote.WithAuth(&authn.Basic{Username: o.username, Password: password}), nil
}

// isLoopback reports whether a registry host[:port] is localhost or a loopback address.
func isLoopback(registry string) bool {
	host := registry
	if h, _, err := net.SplitHostPort(registry); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

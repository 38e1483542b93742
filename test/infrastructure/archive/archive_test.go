package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
)

type entry struct {
	name     string
	data     []byte
	linkname string // makes a symlink
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// layerTar returns a layer: a tar holding one file.
func layerTar(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func configFor(label string, layers ...[]byte) []byte {
	var diffIDs []string
	for _, layer := range layers {
		diffIDs = append(diffIDs, "sha256:"+sum(layer))
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Labels": map[string]string{"test": label}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	return config
}

func manifest(entries ...map[string]any) []byte {
	b, _ := json.Marshal(entries)
	return b
}

func writeTar(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		header := &tar.Header{Name: e.name, Mode: 0o444, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.linkname != "" {
			header = &tar.Header{Name: e.name, Linkname: e.linkname, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(header); err != nil {
			t.Fatal(err)
		}
		if e.linkname == "" {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// podmanStyle is the layout of `podman save --format docker-archive -m`: two images sharing a layer.
type podmanStyle struct {
	layer            []byte
	configA, configB []byte
}

func newPodmanStyle(t *testing.T) podmanStyle {
	layer := layerTar(t, "hello", "#!binary")
	return podmanStyle{layer: layer, configA: configFor("a", layer), configB: configFor("b", layer)}
}

func (p podmanStyle) entries() []entry {
	return []entry{
		{name: sum(p.layer) + ".tar", data: p.layer},
		{name: sum(p.configA) + ".json", data: p.configA},
		{name: "aaaa/layer.tar", linkname: "../" + sum(p.layer) + ".tar"},
		{name: sum(p.configB) + ".json", data: p.configB},
		{name: "manifest.json", data: manifest(
			map[string]any{"Config": sum(p.configA) + ".json", "RepoTags": []string{"localhost/hello:1"}, "Layers": []string{sum(p.layer) + ".tar"}},
			map[string]any{"Config": sum(p.configB) + ".json", "RepoTags": []string{"localhost/hello2:1"}, "Layers": []string{sum(p.layer) + ".tar"}},
		)},
		{name: "repositories", data: []byte(`{"localhost/hello":{"1":"x"}}`)},
	}
}

func tarPath(t *testing.T) string { return filepath.Join(t.TempDir(), "suite.tar") }

func TestVerifyPodmanLayout(t *testing.T) {
	p := newPodmanStyle(t)
	path := tarPath(t)
	writeTar(t, path, p.entries())
	// Names compare as the nodes' runtime resolves them: "hello2:1" would be docker.io's.
	if _, err := archive.Verify(path, []string{"hello2:1"}); err == nil {
		t.Error("hello2:1 found in an archive that holds localhost/hello2:1")
	}
	verified, err := archive.Verify(path, []string{"localhost/hello2:1", "localhost/hello:1"})
	if err != nil {
		t.Fatal(err)
	}
	layers := []archive.Layer{{Digest: "sha256:" + sum(p.layer), DiffID: "sha256:" + sum(p.layer), Size: int64(len(p.layer))}}
	want := []archive.Image{{Ref: "localhost/hello2:1", ID: "sha256:" + sum(p.configB), Layers: layers}, {Ref: "localhost/hello:1", ID: "sha256:" + sum(p.configA), Layers: layers}}
	if !reflect.DeepEqual(verified.Images, want) {
		t.Errorf("images = %+v\nwant %+v", verified.Images, want)
	}
	data, _ := os.ReadFile(path)
	if verified.SHA256 != sum(data) || verified.Size != int64(len(data)) || verified.Path != path {
		t.Errorf("verified = %+v; the file has sha256 %s, %d bytes", verified, sum(data), len(data))
	}
	all, err := archive.Verify(path, nil)
	if err != nil || len(all.Images) != 2 || all.Images[0].Ref != "localhost/hello:1" {
		t.Errorf("Verify without wanted refs = %+v, %v", all.Images, err)
	}
}

func TestVerifyLegacyDockerLayoutWithSymlinkedLayer(t *testing.T) {
	layer := layerTar(t, "hello", "#!binary")
	configA, configB := configFor("a", layer), configFor("b", layer)
	path := tarPath(t)
	writeTar(t, path, []entry{
		{name: sum(configB) + ".json", data: configB},
		{name: "3ffd/VERSION", data: []byte("1.0")},
		{name: "3ffd/json", data: []byte(`{"id":"3ffd"}`)},
		{name: "3ffd/layer.tar", data: layer},
		{name: "7cac/layer.tar", linkname: "../3ffd/layer.tar"},
		{name: sum(configA) + ".json", data: configA},
		{name: "manifest.json", data: manifest(
			map[string]any{"Config": sum(configA) + ".json", "RepoTags": []string{"localhost/hello:1"}, "Layers": []string{"3ffd/layer.tar"}},
			map[string]any{"Config": sum(configB) + ".json", "RepoTags": []string{"localhost/hello2:1"}, "Layers": []string{"7cac/layer.tar"}},
		)},
	})
	verified, err := archive.Verify(path, []string{"localhost/hello:1", "localhost/hello2:1"})
	if err != nil {
		t.Fatal(err)
	}
	if verified.Images[1].ID != "sha256:"+sum(configB) {
		t.Errorf("images = %+v", verified.Images)
	}
}

// What docker's containerd image store saves: an OCI layout (index.json → manifest → config and
// gzip layers) with a manifest.json beside it.
func ociArchive(t *testing.T, extraIndex string) (path, configDigest, manifestDigest string) {
	t.Helper()
	layer := layerTar(t, "hello", "#!binary")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(layer)
	_ = zw.Close()
	config := configFor("a", layer)
	manifestBlob := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + sum(config) + `"},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + sum(gz.Bytes()) + `"}]}`)
	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` +
		sum(manifestBlob) + `","annotations":{"io.containerd.image.name":"docker.io/library/busybox:latest"}}` + extraIndex + `]}`
	path = tarPath(t)
	writeTar(t, path, []entry{
		{name: "blobs/sha256/" + sum(gz.Bytes()), data: gz.Bytes()},
		{name: "blobs/sha256/" + sum(config), data: config},
		{name: "blobs/sha256/" + sum(manifestBlob), data: manifestBlob},
		{name: "index.json", data: []byte(index)},
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{name: "manifest.json", data: manifest(map[string]any{
			"Config": "blobs/sha256/" + sum(config), "RepoTags": []string{"busybox:latest"},
			"Layers": []string{"blobs/sha256/" + sum(gz.Bytes())},
		})},
	})
	return path, "sha256:" + sum(config), "sha256:" + sum(manifestBlob)
}

func TestVerifyOCIStyleWithGzipLayer(t *testing.T) {
	path, config, manifestDigest := ociArchive(t, "")
	verified, err := archive.Verify(path, []string{"busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if got := verified.Images[0]; got.ID != config || got.Manifest != manifestDigest {
		t.Errorf("image %+v, want config %s and manifest %s", got, config, manifestDigest)
	}
}

// An index that points at a manifest the archive lacks (another platform, an attestation) is
// what containerd's import refuses with "content digest ... not found" (kind issue 3795).
func TestVerifyOCIIndexWithMissingManifest(t *testing.T) {
	missing := strings.Repeat("ab", 32)
	path, _, _ := ociArchive(t, `,{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+missing+`","platform":{"architecture":"arm64","os":"linux"}}`)
	_, err := archive.Verify(path, []string{"busybox"})
	wantCorrupt(t, err, missing, "--platform")
}

func wantCorrupt(t *testing.T, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, archive.ErrCorrupt) {
		t.Fatalf("want an error wrapping ErrCorrupt, got %v", err)
	}
	for _, m := range append(mentions, "corrupt") {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

func TestVerifyTruncated(t *testing.T) {
	p := newPodmanStyle(t)
	path := tarPath(t)
	writeTar(t, path, p.entries())
	data, _ := os.ReadFile(path)
	// Cut inside the first file's content.
	if err := os.WriteFile(path, data[:512+100], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := archive.Verify(path, []string{"localhost/hello:1"})
	wantCorrupt(t, err, "truncated", sum(p.layer)+".tar")

	// Cut between two entries: the tar reader sees a clean end, the missing manifest shows it.
	layerEnd := 512 + (len(p.layer)+511)/512*512
	if err := os.WriteFile(path, data[:layerEnd], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = archive.Verify(path, []string{"localhost/hello:1"})
	wantCorrupt(t, err, "manifest.json is missing")
}

func TestVerifyTamperedLayer(t *testing.T) {
	p := newPodmanStyle(t)
	entries := p.entries()
	tampered := bytes.Clone(p.layer)
	tampered[600] ^= 0xff // a byte of the file inside the layer
	entries[0].data = tampered
	path := tarPath(t)
	writeTar(t, path, entries)
	_, err := archive.Verify(path, []string{"localhost/hello:1"})
	wantCorrupt(t, err, "layer "+sum(p.layer)+".tar", "diff_id")
}

func TestVerifyTamperedConfig(t *testing.T) {
	p := newPodmanStyle(t)
	entries := p.entries()
	entries[1].data = bytes.Replace(p.configA, []byte(`"a"`), []byte(`"x"`), 1)
	path := tarPath(t)
	writeTar(t, path, entries)
	_, err := archive.Verify(path, []string{"localhost/hello:1"})
	wantCorrupt(t, err, "config "+sum(p.configA)+".json")
}

func TestVerifyMissingRef(t *testing.T) {
	p := newPodmanStyle(t)
	path := tarPath(t)
	writeTar(t, path, p.entries())
	_, err := archive.Verify(path, []string{"localhost/hello:1", "localhost/other:1"})
	wantCorrupt(t, err, "localhost/other:1", "localhost/hello2:1")
}

func TestVerifyMissingLayer(t *testing.T) {
	p := newPodmanStyle(t)
	path := tarPath(t)
	writeTar(t, path, p.entries()[1:]) // the layer file and its symlink's target are gone
	_, err := archive.Verify(path, nil)
	wantCorrupt(t, err, "layer "+sum(p.layer)+".tar", "missing")
}

func TestVerifyMissingManifest(t *testing.T) {
	p := newPodmanStyle(t)
	path := tarPath(t)
	writeTar(t, path, p.entries()[:4])
	_, err := archive.Verify(path, nil)
	wantCorrupt(t, err, "manifest.json")
}

func TestVerifyBrokenManifest(t *testing.T) {
	path := tarPath(t)
	writeTar(t, path, []entry{{name: "manifest.json", data: []byte(`{"not": "a list"}`)}})
	_, err := archive.Verify(path, nil)
	wantCorrupt(t, err, "manifest.json does not parse")
}

func TestVerifyMissingFile(t *testing.T) {
	_, err := archive.Verify(filepath.Join(t.TempDir(), "nope.tar"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want ErrNotExist, got %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	want := filepath.Join(t.TempDir(), "custom")
	t.Setenv("E2E_ARCHIVE_DIR", want)
	dir, err := archive.DefaultDir()
	if err != nil || dir != want {
		t.Fatalf("DefaultDir = %q, %v", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("mode = %v, %v", info.Mode(), err)
	}

	t.Setenv("E2E_ARCHIVE_DIR", "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir, err = archive.DefaultDir()
	if err != nil || !strings.HasSuffix(dir, filepath.Join("kindling", "archives")) {
		t.Errorf("DefaultDir = %q, %v", dir, err)
	}
}

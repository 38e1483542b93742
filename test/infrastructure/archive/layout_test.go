package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// saveStream writes the tar at path to w, as an engine's save does.
func saveStream(path string) func(context.Context, io.Writer) error {
	return func(_ context.Context, w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
}

func podmanLayout(t *testing.T, dir string) (podmanStyle, archive.Verified) {
	t.Helper()
	p := newPodmanStyle(t)
	src := tarPath(t)
	writeTar(t, src, p.entries())
	v, err := archive.WriteLayout(context.Background(), dir, "suite", "run1", []string{"localhost/hello:1", "localhost/hello2:1"}, saveStream(src))
	if err != nil {
		t.Fatal(err)
	}
	return p, v
}

func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// The layout holds each blob once, by digest: two configs and the shared layer; nothing of the
// docker-archive's own files (manifest.json, repositories).
func TestWriteLayout(t *testing.T) {
	dir := t.TempDir()
	p, v := podmanLayout(t, dir)
	if v.Path != filepath.Join(dir, "suite-run1") || len(v.Images) != 2 || v.Images[0].ID != "sha256:"+sum(p.configA) {
		t.Fatalf("verified %+v", v)
	}
	if got := blobFiles(t, v.Path); len(got) != 3 {
		t.Errorf("blobs %v, want the two configs and the shared layer", got)
	}
	if want := int64(len(p.configA) + len(p.configB) + len(p.layer)); v.Size < want || v.Size > want+4096 {
		t.Errorf("size %d, want the blobs' %d and the index", v.Size, want)
	}
	l, err := archive.OpenLayout(v.Path, v.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Images) != 2 || l.Images[1].Refs[0] != "localhost/hello2:1" || l.Images[1].Layers[0].Digest.Encoded() != sum(p.layer) {
		t.Errorf("layout %+v", l.Images)
	}
	if err := l.Check(l.Images); err != nil {
		t.Error(err)
	}
	if d := l.Images[0].Described(); len(d) != 1 || d[0].ID != v.Images[0].ID || d[0].Layers[0] != v.Images[0].Layers[0] {
		t.Errorf("described %+v, verified %+v", d, v.Images[0])
	}
	if _, err := archive.OpenLayout(v.Path, strings.Repeat("0", 64)); !errors.Is(err, archive.ErrCorrupt) {
		t.Errorf("open with another index digest: %v, want ErrCorrupt", err)
	}
}

// An image's parts are OCI archives: the partial image names only its layers; the whole image
// keeps its config; each carries only the blobs it sends.
func TestLayoutWritePart(t *testing.T) {
	_, v := podmanLayout(t, t.TempDir())
	l, err := archive.OpenLayout(v.Path, v.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	img := l.Images[0]
	taller := img // as if it had the layer twice: its first part is a partial image of one layer
	taller.Layers = append(slices.Clone(img.Layers), img.Layers[0])
	taller.DiffIDs = append(slices.Clone(img.DiffIDs), img.DiffIDs[0])
	for _, p := range []archive.Part{{Image: taller, Layers: 1, Send: img.Layers[:1]}, {Image: img, Layers: 1}} {
		var out bytes.Buffer
		if err := l.WritePart(&out, p); err != nil {
			t.Fatal(err)
		}
		files := untar(t, out.Bytes())
		var index ocispec.Index
		if err := json.Unmarshal(files["index.json"], &index); err != nil || len(index.Manifests) != 1 || files["oci-layout"] == nil {
			t.Fatalf("index %s, %v; files %v", files["index.json"], err, keys(files))
		}
		name := index.Manifests[0].Annotations["io.containerd.image.name"]
		if want := p.Refs()[0]; name != want || p.Whole() != (name == "localhost/hello:1") {
			t.Errorf("named %q, want %q", name, want)
		}
		var m ocispec.Manifest
		json.Unmarshal(files["blobs/sha256/"+index.Manifests[0].Digest.Encoded()], &m)
		var config ocispec.Image
		json.Unmarshal(files["blobs/sha256/"+m.Config.Digest.Encoded()], &config)
		if len(m.Layers) != p.Layers || len(config.RootFS.DiffIDs) != p.Layers || (m.Config.Digest.String() == img.ID) != p.Whole() {
			t.Errorf("part of %d layers: manifest %+v, config %+v", p.Layers, m, config)
		}
		if _, sent := files["blobs/sha256/"+img.Layers[0].Digest.Encoded()]; sent != (len(p.Send) > 0) {
			t.Errorf("part sending %v: layer blob sent %v", p.Send, sent)
		}
	}
}

// Parts leave out what the nodes hold unpacked and go up to the most bytes, a larger layer alone.
func TestParts(t *testing.T) {
	d := func(s string) digest.Digest { return digest.FromString(s) }
	img := archive.LayoutImage{Refs: []string{"localhost/a:1"},
		Layers:  []archive.Blob{{Digest: d("1"), Size: 50}, {Digest: d("2"), Size: 10}, {Digest: d("3"), Size: 20}, {Digest: d("4"), Size: 5}},
		DiffIDs: []digest.Digest{d("1"), d("2"), d("3"), d("4")}}
	describe := func(parts []archive.Part) string {
		var s []string
		for _, p := range parts {
			s = append(s, fmt.Sprintf("%d:%d", p.Layers, p.Bytes()))
		}
		return strings.Join(s, " ")
	}
	if got := describe(archive.Parts(img, nil, 30)); got != "1:50 3:30 4:5" {
		t.Errorf("parts of 30 bytes: %s", got)
	}
	if got := describe(archive.Parts(img, nil, 100)); got != "4:85" {
		t.Errorf("parts of 100 bytes: %s", got)
	}
	first := img.Chains()
	if got := describe(archive.Parts(img, map[digest.Digest]bool{first[1]: true}, 100)); got != "4:25" {
		t.Errorf("with the first two layers unpacked: %s", got)
	}
	if got := describe(archive.Parts(img, map[digest.Digest]bool{first[3]: true}, 100)); got != "4:0" {
		t.Errorf("with every layer unpacked: %s", got)
	}
	if img.DiffIDs[1] != d("2") {
		t.Error("Chains changed the image's diff IDs")
	}
}

func untar(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Releasing the first image deletes its config and the layer it shares with the second, which
// the nodes hold unpacked now; releasing both empties the archive.
func TestLayoutRelease(t *testing.T) {
	p, v := podmanLayout(t, t.TempDir())
	l, _ := archive.OpenLayout(v.Path, v.SHA256)
	freed, err := l.Release(l.Images[1:])
	if err != nil || freed != int64(len(p.configA)+len(p.layer)) {
		t.Fatalf("freed %d, %v; want the first config's and the layer's %d bytes", freed, err, len(p.configA)+len(p.layer))
	}
	if err := l.Check(l.Images[1:]); err != nil {
		t.Errorf("what is left does not check: %v", err)
	}
	if err := l.Check(l.Images); !errors.Is(err, archive.ErrCorrupt) {
		t.Errorf("check of a released image: %v, want ErrCorrupt", err)
	}
	if _, err := l.Release(nil); err != nil || len(blobFiles(t, v.Path)) != 0 {
		t.Errorf("release of everything: %v, left %v", err, blobFiles(t, v.Path))
	}
}

// A blob changed on disk after the export fails the image before its last byte is written:
// the reader never gets a whole archive.
func TestLayoutWritePartCatchesAChangedBlob(t *testing.T) {
	p, v := podmanLayout(t, t.TempDir())
	l, _ := archive.OpenLayout(v.Path, v.SHA256)
	changed := bytes.Clone(p.layer)
	changed[len(changed)-600] ^= 1 // inside the layer's file content
	if err := os.WriteFile(filepath.Join(v.Path, "blobs", "sha256", sum(p.layer)), changed, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := l.WritePart(&out, archive.Parts(l.Images[0], nil, archive.MinPart)[0])
	if !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), "changed on disk") {
		t.Fatalf("err = %v, want the changed blob named", err)
	}
	if bytes.Contains(out.Bytes(), changed) {
		t.Error("the whole changed blob reached the reader")
	}
	if err := l.Check(l.Images); !errors.Is(err, archive.ErrCorrupt) {
		t.Errorf("check: %v, want ErrCorrupt", err)
	}
}

// A save that fails or writes a broken archive leaves no layout and no temporary.
func TestWriteLayoutLeavesNothingOnFailure(t *testing.T) {
	dir := t.TempDir()
	p := newPodmanStyle(t)
	src := tarPath(t)
	writeTar(t, src, p.entries())
	_, err := archive.WriteLayout(context.Background(), dir, "suite", "run1", []string{"localhost/absent:1"}, saveStream(src))
	if !errors.Is(err, archive.ErrCorrupt) {
		t.Errorf("a ref the archive lacks: %v", err)
	}
	_, err = archive.WriteLayout(context.Background(), dir, "suite", "run1", []string{"localhost/hello:1"},
		func(_ context.Context, w io.Writer) error {
			w.Write([]byte("not a tar"))
			return errors.New("engine died")
		})
	if err == nil || !strings.Contains(err.Error(), "engine died") {
		t.Errorf("a failed save: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %v", entries)
	}
}

// A new export replaces the suite's stale archives and layouts, and List shows layouts with
// what their blobs hold.
func TestWriteLayoutReplacesStale(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "suite-old.tar")
	os.WriteFile(old, []byte("x"), 0o600)
	_, first := podmanLayout(t, dir)
	p := newPodmanStyle(t)
	src := tarPath(t)
	writeTar(t, src, p.entries())
	second, err := archive.WriteLayout(context.Background(), dir, "suite", "run2", []string{"localhost/hello:1"}, saveStream(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Removed) != 1 || second.Removed[0].Path != first.Path {
		t.Errorf("removed %+v, want the first layout", second.Removed)
	}
	files, err := archive.List(dir)
	if err != nil || len(files) != 1 || files[0].Path != second.Path || files[0].Size != second.Size {
		t.Errorf("list %+v %v, want the second layout of %d bytes", files, err, second.Size)
	}
}

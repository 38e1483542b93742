package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
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

// Each image written from the layout is a docker-archive that verifies on its own.
func TestLayoutWriteImage(t *testing.T) {
	_, v := podmanLayout(t, t.TempDir())
	l, err := archive.OpenLayout(v.Path, v.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range l.Images {
		out := filepath.Join(t.TempDir(), "image.tar")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.WriteImage(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		got, err := archive.Verify(out, img.Refs)
		if err != nil || len(got.Images) != 1 || got.Images[0].ID != img.ID {
			t.Errorf("%v: %+v, %v", img.Refs, got.Images, err)
		}
	}
}

// Releasing the first image keeps the shared layer for the second; releasing both empties it.
func TestLayoutRelease(t *testing.T) {
	p, v := podmanLayout(t, t.TempDir())
	l, _ := archive.OpenLayout(v.Path, v.SHA256)
	freed, err := l.Release(l.Images[1:])
	if err != nil || freed != int64(len(p.configA)) {
		t.Fatalf("freed %d, %v; want the first config's %d bytes", freed, err, len(p.configA))
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
func TestLayoutWriteImageCatchesAChangedBlob(t *testing.T) {
	p, v := podmanLayout(t, t.TempDir())
	l, _ := archive.OpenLayout(v.Path, v.SHA256)
	changed := bytes.Clone(p.layer)
	changed[len(changed)-600] ^= 1 // inside the layer's file content
	if err := os.WriteFile(filepath.Join(v.Path, "blobs", "sha256", sum(p.layer)), changed, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := l.WriteImage(&out, l.Images[0])
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

package load

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
)

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// twoImages is a docker-archive of two images that share a layer, as podman saves it, and
// their config digests.
func twoImages(t *testing.T) ([]byte, []string) {
	t.Helper()
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	lw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: 8})
	lw.Write([]byte("#!binary"))
	lw.Close()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	add(hexSum(layer.Bytes())+".tar", layer.Bytes())
	var entries []map[string]any
	var ids []string
	for _, name := range []string{"a", "b"} {
		config := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Labels":{"n":%q}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}`, name, hexSum(layer.Bytes()))
		add(hexSum(config)+".json", config)
		entries = append(entries, map[string]any{"Config": hexSum(config) + ".json", "RepoTags": []string{"localhost/" + name + ":1"}, "Layers": []string{hexSum(layer.Bytes()) + ".tar"}})
		ids = append(ids, "sha256:"+hexSum(config))
	}
	m, _ := json.Marshal(entries)
	add("manifest.json", m)
	tw.Close()
	return out.Bytes(), ids
}

func testLayout(t *testing.T) archive.Layout {
	t.Helper()
	saved, _ := twoImages(t)
	v, err := archive.WriteLayout(context.Background(), t.TempDir(), "suite", "run1", []string{"localhost/a:1", "localhost/b:1"},
		func(_ context.Context, w io.Writer) error { _, err := w.Write(saved); return err })
	if err != nil {
		t.Fatal(err)
	}
	l, err := archive.OpenLayout(v.Path, v.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// listing is crictl's listing with the images of the stream (an OCI archive) added.
func listing(before, stdin string) string {
	var have struct {
		Images []map[string]any `json:"images"`
	}
	json.Unmarshal([]byte(before), &have)
	files := map[string][]byte{}
	tr := tar.NewReader(strings.NewReader(stdin))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		files[h.Name], _ = io.ReadAll(tr)
	}
	var index ocispec.Index
	json.Unmarshal(files["index.json"], &index)
	for _, d := range index.Manifests {
		var m ocispec.Manifest
		json.Unmarshal(files["blobs/sha256/"+d.Digest.Encoded()], &m)
		have.Images = append(have.Images, map[string]any{"id": m.Config.Digest.String(), "repoTags": []string{d.Annotations["io.containerd.image.name"]}})
	}
	out, _ := json.Marshal(have)
	return string(out)
}

// Image by image into two nodes: each imports each image once, one stream per image, and done
// runs after each image is on both nodes, in order.
func TestLayout(t *testing.T) {
	verifyTimeout, verifyInterval = 300*time.Millisecond, 10*time.Millisecond
	config := readTestdata(t, "containerd-config-dump.toml")
	l := testLayout(t)
	n1 := &fakeNode{name: "n1", images: `{"images":[]}`, config: config, imports: listing}
	n2 := &fakeNode{name: "n2", images: `{"images":[]}`, config: config, imports: listing}
	var done []string
	res, err := Layout(context.Background(), []nodes.Node{n1, n2}, l, Options{Log: t.Logf}, func(img archive.LayoutImage) error {
		for _, n := range []*fakeNode{n1, n2} {
			if !strings.Contains(n.images, img.ID) {
				t.Errorf("done(%v) before node %s lists it", img.Refs, n.name)
			}
		}
		done = append(done, img.Refs[0])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, " ") != "localhost/a:1 localhost/b:1" || len(res.Images) != 2 || !res.Nodes[0].Imported || !res.Nodes[1].Imported {
		t.Errorf("done %v, result %+v", done, res)
	}
	for _, n := range []*fakeNode{n1, n2} {
		if len(n.streams) != 2 || n.collections != 2 {
			t.Errorf("node %s: %d imports, %d collections; want one of each per image", n.name, len(n.streams), n.collections)
		}
	}

	// Again: both nodes hold both images, nothing is imported, done still runs for each.
	done = nil
	if _, err := Layout(context.Background(), []nodes.Node{n1, n2}, l, Options{}, func(img archive.LayoutImage) error {
		done = append(done, img.Refs[0])
		return nil
	}); err != nil || len(done) != 2 || len(n1.streams) != 2 {
		t.Errorf("second load: %v, done %v, %d imports", err, done, len(n1.streams))
	}
}

// A blob changed on disk fails its image with the blob named, whatever ctr says of the cut
// stream, and done never runs for it.
func TestLayoutStopsAtAChangedBlob(t *testing.T) {
	verifyTimeout, verifyInterval = 300*time.Millisecond, 10*time.Millisecond
	l := testLayout(t)
	cfg := l.Images[1].Config
	path := filepath.Join(l.Dir, "blobs", "sha256", cfg.Digest.Encoded())
	data, _ := os.ReadFile(path)
	data[0] = ' '
	os.WriteFile(path, data, 0o600)
	n := &fakeNode{name: "n1", images: `{"images":[]}`, config: readTestdata(t, "containerd-config-dump.toml"), imports: listing}
	var done int
	_, err := Layout(context.Background(), []nodes.Node{n}, l, Options{}, func(archive.LayoutImage) error { done++; return nil })
	if !errors.Is(err, archive.ErrCorrupt) || !strings.Contains(err.Error(), cfg.Digest.Encoded()) {
		t.Errorf("err = %v, want the changed blob named", err)
	}
	if done != 1 {
		t.Errorf("done ran %d times, want once (the first image)", done)
	}
}

package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// TestStream fans one save out to every node and to the verifier, then checks each node for the
// images the verifier found in the stream.
func TestStream(t *testing.T) {
	verifyTimeout, verifyInterval = 300*time.Millisecond, 10*time.Millisecond
	const ref = "localhost/streamed:1"
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	if err := tarball.Write(tag, img, &saved); err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	config := readTestdata(t, "containerd-config-dump.toml")
	listing := fmt.Sprintf(`{"images":[{"id":%q,"repoTags":[%q],"repoDigests":[],"size":"4096"}]}`, id.String(), ref)
	save := func(ctx context.Context, w io.Writer) error {
		_, err := w.Write(saved.Bytes())
		return err
	}
	ctx := context.Background()

	a := &fakeNode{name: "a", images: `{"images":[]}`, importTo: listing, config: config}
	b := &fakeNode{name: "b", images: `{"images":[]}`, importTo: listing, config: config}
	res, v, err := Stream(ctx, []nodes.Node{a, b}, save, []string{ref}, Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*fakeNode{a, b} {
		if n.stdin != saved.String() {
			t.Errorf("node %s read %d bytes, want the whole save (%d)", n.name, len(n.stdin), saved.Len())
		}
		if !strings.Contains(strings.Join(n.imported, " "), "--discard-unpacked-layers") {
			t.Errorf("node %s import %v", n.name, n.imported)
		}
	}
	if len(v.Images) != 1 || v.Images[0].ID != id.String() || v.Size != int64(saved.Len()) {
		t.Errorf("verified %+v, want one image %s in %d bytes", v, id, saved.Len())
	}
	if len(res.Images) != 1 || res.Images[0].ID != id.String() {
		t.Errorf("result images %+v", res.Images)
	}

	// A stream that is not an archive of the refs fails, even when the nodes took it.
	c := &fakeNode{name: "c", images: `{"images":[]}`, importTo: listing, config: config}
	_, _, err = Stream(ctx, []nodes.Node{c}, save, []string{"localhost/other:1"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "localhost/other:1") {
		t.Errorf("a stream without the wanted ref: %v", err)
	}

	// A save that fails halfway fails the load, naming it.
	broken := func(ctx context.Context, w io.Writer) error {
		w.Write(saved.Bytes()[:1024])
		return errors.New("docker save: unexpected EOF")
	}
	d := &fakeNode{name: "d", images: `{"images":[]}`, importTo: listing, config: config}
	if _, _, err := Stream(ctx, []nodes.Node{d}, broken, []string{ref}, Options{}); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("a failed save: %v", err)
	}

	// A node whose import fails stops the stream for every node.
	e := &fakeNode{name: "e", images: `{"images":[]}`, config: config, importErr: "ctr: no space left on device"}
	f := &fakeNode{name: "f", images: `{"images":[]}`, importTo: listing, config: config}
	if _, _, err := Stream(ctx, []nodes.Node{e, f}, save, []string{ref}, Options{}); err == nil || !strings.Contains(err.Error(), "node e") {
		t.Errorf("a failed import: %v", err)
	}
}

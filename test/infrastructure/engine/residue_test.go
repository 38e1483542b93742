package engine_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

// A containerd store scripted as blobs by digest, present ones listed, and snapshots with sizes.
type fakeStore struct {
	blobs     map[string]string
	present   []string
	snapshots string
	images    string
}

func (s *fakeStore) handle(c engine.Cmd) (enginetest.Response, bool) {
	argv := enginetest.Argv(c)
	const ctr = "ctr --address /run/d29/containerd.sock --namespace moby "
	switch {
	case argv == ctr+"content ls --quiet":
		return enginetest.Response{Stdout: strings.Join(s.present, "\n") + "\n"}, true
	case strings.HasPrefix(argv, ctr+"content get "):
		b, ok := s.blobs[strings.TrimPrefix(argv, ctr+"content get ")]
		if !ok {
			return enginetest.Response{Stderr: "not found", Err: exit(1)}, true
		}
		return enginetest.Response{Stdout: b}, true
	case argv == ctr+"snapshots --snapshotter overlayfs usage":
		return enginetest.Response{Stdout: s.snapshots}, true
	case argv == "docker image ls --all --quiet --no-trunc":
		return enginetest.Response{Stdout: s.images}, true
	}
	return enginetest.Response{}, false
}

func TestStoreResidue(t *testing.T) {
	ctx := context.Background()
	e, runner := newEngine(t, engine.Docker)
	runner.On("docker info --format {{json .}}", enginetest.Response{Stdout: `{"DockerRootDir":"/var/lib/d29/docker","Driver":"overlayfs",
		"DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]],"Containerd":{"Address":"/run/d29/containerd.sock"}}`})
	runner.On("ctr --address /run/d29/containerd.sock plugins ls --detailed", enginetest.Response{Stdout: "Type: io.containerd.snapshotter.v1\nID: overlayfs\nroot /snap\n"})
	// The run's image: an index with the host's manifest present and another platform's absent,
	// two layers; a kept image shares the first layer.
	chain1 := identity.ChainID([]digest.Digest{"sha256:d1"}).String()
	chain2 := identity.ChainID([]digest.Digest{"sha256:d1", "sha256:d2"}).String()
	store := &fakeStore{
		blobs: map[string]string{
			"sha256:idx": `{"manifests":[{"digest":"sha256:m1"},{"digest":"sha256:m-arm64"}]}`,
			"sha256:m1":  `{"config":{"digest":"sha256:c1"},"layers":[{"digest":"sha256:l1","size":100},{"digest":"sha256:l2","size":200}]}`,
			"sha256:c1":  `{"rootfs":{"type":"layers","diff_ids":["sha256:d1","sha256:d2"]}}`,
			"sha256:k":   `{"config":{"digest":"sha256:ck"},"layers":[{"digest":"sha256:l1","size":100}]}`,
			"sha256:ck":  `{"rootfs":{"type":"layers","diff_ids":["sha256:d1"]}}`,
		},
		present: []string{"sha256:idx", "sha256:m1", "sha256:c1", "sha256:l1", "sha256:l2", "sha256:k", "sha256:ck"},
	}
	runner.Func = store.handle

	objs, err := e.StoreObjects(ctx, []string{"sha256:idx"})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Blobs) != 5 || objs.Blobs["sha256:l2"] != 200 || !reflect.DeepEqual(objs.Snapshots, []string{chain1, chain2}) {
		t.Fatalf("StoreObjects = %+v, want index, manifest, config and two layers (the absent platform skipped), snapshots %s %s", objs, chain1, chain2)
	}

	// After the delete the engine kept the second layer's blob and snapshot.
	store.present = []string{"sha256:l1", "sha256:l2", "sha256:k", "sha256:ck"}
	store.images = "sha256:k\n"
	store.snapshots = "KEY SIZE INODES\n" + chain1 + " 74.2 MiB 3000\n" + chain2 + " 2.0 MiB 12\n"
	res, err := e.StoreResidue(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Blobs, map[string]int64{"sha256:l2": 200}) || !reflect.DeepEqual(res.Snapshots, map[string]int64{chain2: 2 << 20}) {
		t.Fatalf("residue = %+v, want only the second layer's blob and snapshot (the first is the kept image's)", res)
	}
	want := [][]string{
		{"ctr", "--address", "/run/d29/containerd.sock", "--namespace", "moby", "snapshots", "--snapshotter", "overlayfs", "rm", chain2},
		{"ctr", "--address", "/run/d29/containerd.sock", "--namespace", "moby", "content", "rm", "sha256:l2"},
	}
	if !reflect.DeepEqual(res.Reclaim, want) || res.Bytes() != 200+2<<20 {
		t.Errorf("reclaim = %q (%d bytes), want %q", res.Reclaim, res.Bytes(), want)
	}

	// Everything gone: no residue.
	store.present, store.snapshots = []string{"sha256:k", "sha256:ck", "sha256:l1"}, "KEY SIZE INODES\n"+chain1+" 74.2 MiB 3000\n"
	if res, err := e.StoreResidue(ctx, objs); err != nil || !res.Empty() {
		t.Errorf("after a clean delete residue = %+v, %v", res, err)
	}
}

func TestStoreObjectsElsewhereIsEmpty(t *testing.T) {
	e, _ := newEngine(t, engine.Docker) // overlay2: image bytes are not containerd's
	objs, err := e.StoreObjects(context.Background(), []string{"sha256:abc"})
	if err != nil || len(objs.Blobs) != 0 || len(objs.Snapshots) != 0 {
		t.Errorf("StoreObjects on overlay2 = %+v, %v; want nothing", objs, err)
	}
}

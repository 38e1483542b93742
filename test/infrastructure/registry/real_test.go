package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
	"github.com/kindling-dev/kindling/test/infrastructure/engine/enginetest"
)

// TestRealPushAndVerify runs registry:3 with each Kind provider's engine, pushes a real image,
// reads it back, and shows that a failed push leaves the image in the engine.
func TestRealPushAndVerify(t *testing.T) {
	for _, name := range []string{engine.Podman, engine.Docker} {
		t.Run(name, func(t *testing.T) {
			eng := enginetest.Real(t, name)
			ctx := context.Background()
			unique := enginetest.Unique(t)
			ref := "localhost/kindling-it-" + unique + "/hello:1"
			contextDir, containerfile := enginetest.HelloContext(t)
			if err := eng.Build(ctx, engine.BuildSpec{Ref: ref, Dockerfile: containerfile, ContextDir: contextDir}); err != nil {
				t.Fatal(err)
			}
			id, found, err := eng.ImageID(ctx, ref)
			if err != nil || !found {
				t.Fatalf("no %s after the build: %v", ref, err)
			}
			t.Cleanup(func() { eng.Remove(context.Background(), []string{id}) })

			l, err := Start(ctx, name, "kindling-registry-it-"+unique, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := l.Remove(context.Background()); err != nil {
					t.Errorf("remove: %v", err)
				}
			})
			again, err := Start(ctx, name, l.Name, t.Logf)
			if err != nil || again != l {
				t.Errorf("a second Start gave %+v, %v; want the running %+v", again, err, l)
			}

			// Joining another network keeps the port (docker 20.10 moves ports it chose itself).
			network := "kindling-it-" + unique
			if out, err := enginetest.Command(ctx, name, "network", "create", network).CombinedOutput(); err != nil {
				t.Fatalf("network create: %v: %s", err, out)
			}
			t.Cleanup(func() { enginetest.Command(context.Background(), name, "network", "rm", network).Run() })
			if err := l.Attach(ctx, network, nil); err != nil {
				t.Fatal(err)
			}
			if again, err := Start(ctx, name, l.Name, t.Logf); err != nil || again.HostPort != l.HostPort {
				t.Fatalf("after joining network %s: %+v, %v; want port %s", network, again, err, l.HostPort)
			}

			dst := l.Host() + "/hello:1"
			if err := eng.Push(ctx, ref, dst, true); err != nil {
				t.Fatal(err)
			}
			digest, err := Verify(ctx, dst, id, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: pushed %s (%s), engine ID %s", name, dst, digest, id)
			if _, found, _ := eng.ImageID(ctx, dst); found {
				t.Errorf("the push left the name %s in %s", dst, name)
			}
			if _, err := Verify(ctx, dst, "sha256:"+strings.Repeat("0", 64), true); err == nil || !strings.Contains(err.Error(), "is not the pushed image") {
				t.Errorf("verify against another ID: %v", err)
			}
			if _, err := Verify(ctx, l.Host()+"/never-pushed:1", id, true); err == nil || !strings.Contains(err.Error(), "never-pushed") {
				t.Errorf("verify of a missing image: %v", err)
			}

			// Nothing answers on port 1: the push fails, names the image, and the image stays.
			err = eng.Push(ctx, ref, "localhost:1/hello:1", true)
			if err == nil || !strings.Contains(err.Error(), ref) {
				t.Fatalf("push to a closed port: %v", err)
			}
			if _, found, err := eng.ImageID(ctx, ref); err != nil || !found {
				t.Errorf("a failed push lost %s: found=%v %v", ref, found, err)
			}

			if path, err := l.VolumePath(ctx); err != nil || path == "" {
				t.Errorf("volume path %q, %v", path, err)
			}
			if err := l.Remove(ctx); err != nil {
				t.Fatal(err)
			}
			if running, err := l.running(ctx); err != nil || running {
				t.Errorf("still running after Remove (%v)", err)
			}
		})
	}
}

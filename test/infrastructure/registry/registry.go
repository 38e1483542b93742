// Package registry runs a suite's own image registry the way kind's docs describe ("local
// registry"): registry:3 as a container of the run's engine, published on the host's loopback
// for pushes and attached to the Kind network for the nodes' pulls, with containerd on every node
// told where "localhost:<port>" really is; and it reads back what a registry holds.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// Image is the registry's image; it is pulled like any other (through a mirror here).
const Image = "registry:3"

// ContainerdPatch makes containerd read registry hosts from /etc/containerd/certs.d, as kind's
// local registry recipe does; it goes into the Kind config at create time.
const ContainerdPatch = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"`

// Local is a running local registry.
type Local struct {
	Name     string `json:"name"`     // container name, and its host name on the Kind network
	Engine   string `json:"engine"`   // podman or docker
	HostPort string `json:"hostPort"` // its port on 127.0.0.1
}

// Host is the registry in image references: the host pushes to it on the loopback, and the
// nodes' containerd maps the same name to the container.
func (l Local) Host() string { return "localhost:" + l.HostPort }

// Volume is the volume holding the registry's data.
func (l Local) Volume() string { return l.Name }

// Start runs the registry, or finds it running, and waits until it answers.
func Start(ctx context.Context, engineName, containerName string, log func(string, ...any)) (Local, error) {
	l, running, err := Find(ctx, engineName, containerName)
	if err != nil {
		return l, err
	}
	if !running {
		// A stopped one of an earlier run goes; its volume and the layers in it stay.
		l.engine(ctx, "rm", "-f", containerName)
		// A port of our choosing: docker 20.10 moves an engine-chosen one when the container
		// joins another network (the Kind network, in Attach).
		if l.HostPort, err = freePort(); err != nil {
			return l, err
		}
		if _, err := l.engine(ctx, "run", "-d", "--name", containerName, "--label", "kindling.registry=true",
			"-v", l.Volume()+":/var/lib/registry", "-p", "127.0.0.1:"+l.HostPort+":5000", Image); err != nil {
			return l, fmt.Errorf("start the local registry %s (%s): %w", containerName, Image, err)
		}
		log("started the local registry %s (%s)", containerName, Image)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return l.answers(ctx), nil
	})
	if err != nil {
		return l, fmt.Errorf("local registry %s on 127.0.0.1:%s does not answer /v2/: %w", containerName, l.HostPort, err)
	}
	return l, nil
}

// Find reports whether the registry container runs, with its published port; it starts nothing.
func Find(ctx context.Context, engineName, containerName string) (Local, bool, error) {
	l := Local{Name: containerName, Engine: engineName}
	running, err := l.running(ctx)
	if err != nil || !running {
		return l, false, err
	}
	out, err := l.engine(ctx, "port", containerName, "5000/tcp")
	if err != nil {
		return l, false, fmt.Errorf("local registry %s: no published port: %w", containerName, err)
	}
	_, port, ok := strings.Cut(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), ":")
	if !ok || port == "" {
		return l, false, fmt.Errorf("local registry %s: cannot read its port from %q", containerName, out)
	}
	l.HostPort = port
	return l, true, nil
}

// answers reports whether the registry answers /v2/ on its port.
func (l Local) answers(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+l.HostPort+"/v2/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freePort is a TCP port of the loopback that nothing listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for the local registry: %w", err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func (l Local) running(ctx context.Context) (bool, error) {
	out, err := l.engine(ctx, "ps", "-q", "--filter", "name=^"+l.Name+"$")
	if err != nil {
		return false, fmt.Errorf("look for the local registry %s: %w", l.Name, err)
	}
	return strings.TrimSpace(out) != "", nil
}

// Attach connects the registry to the Kind network and tells every node's containerd that
// Host() is the container, over plain HTTP.
func (l Local) Attach(ctx context.Context, network string, ns []nodes.Node) error {
	if _, err := l.engine(ctx, "network", "connect", network, l.Name); err != nil && !strings.Contains(err.Error(), "already") {
		return fmt.Errorf("connect the local registry %s to network %s: %w", l.Name, network, err)
	}
	dir := path.Join("/etc/containerd/certs.d", l.Host())
	hosts := fmt.Sprintf("[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+l.Name+":5000")
	for _, n := range ns {
		if err := n.CommandContext(ctx, "mkdir", "-p", dir).Run(); err != nil {
			return fmt.Errorf("node %s: %w", n, err)
		}
		if err := n.CommandContext(ctx, "cp", "/dev/stdin", path.Join(dir, "hosts.toml")).SetStdin(strings.NewReader(hosts)).Run(); err != nil {
			return fmt.Errorf("node %s: write %s/hosts.toml: %w", n, dir, err)
		}
	}
	return nil
}

// Remove deletes the registry container and its volume; missing ones are no error.
func (l Local) Remove(ctx context.Context) error {
	var errs []error
	if _, err := l.engine(ctx, "rm", "-f", l.Name); err != nil && !notFound(err) {
		errs = append(errs, err)
	}
	if _, err := l.engine(ctx, "volume", "rm", "-f", l.Volume()); err != nil && !notFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// VolumePath is where the registry's volume lives on the host, for the disk reports.
func (l Local) VolumePath(ctx context.Context) (string, error) {
	out, err := l.engine(ctx, "volume", "inspect", "--format", "{{.Mountpoint}}", l.Volume())
	return strings.TrimSpace(out), err
}

func notFound(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "no such") || strings.Contains(s, "not found") || strings.Contains(s, "no container")
}

func (l Local) engine(ctx context.Context, args ...string) (string, error) {
	out, err := engine.Output(ctx, nil, engine.Cmd{Name: l.Engine, Args: args})
	return string(out), err
}

// Verify reads ref back from its registry and checks it is the image id: its config digest (the
// image ID of podman and of docker's classic store) or its manifest digest (docker's containerd
// store). It returns the registry's digest of ref. Insecure allows plain HTTP.
func Verify(ctx context.Context, ref, id string, insecure bool) (string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("verify %s: %w", ref, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return "", fmt.Errorf("read %s back from its registry: %w", ref, err)
	}
	seen := []string{desc.Digest.String()}
	if img, err := desc.Image(); err == nil {
		if d, err := img.Digest(); err == nil {
			seen = append(seen, d.String())
		}
		if c, err := img.ConfigName(); err == nil {
			seen = append(seen, c.String())
		}
	}
	for _, d := range seen {
		if d == id {
			return desc.Digest.String(), nil
		}
	}
	return "", fmt.Errorf("the registry's %s is not the pushed image %s (it has %s)", ref, id, strings.Join(seen, ", "))
}

// Document publishes the registry in the cluster as KEP-1755 asks: ConfigMap
// kube-public/local-registry-hosting, which tools such as tilt and ctlptl read.
func (l Local) Document(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cm := corev1ac.ConfigMap("local-registry-hosting", "kube-public").WithData(map[string]string{
		"localRegistryHosting.v1": fmt.Sprintf("host: %q\nhostFromContainerRuntime: %q\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n",
			l.Host(), l.Name+":5000"),
	})
	_, err = kube.CoreV1().ConfigMaps("kube-public").Apply(ctx, cm, metav1.ApplyOptions{FieldManager: "kindling", Force: true})
	if err != nil {
		return fmt.Errorf("publish the local registry in ConfigMap kube-public/local-registry-hosting: %w", err)
	}
	return nil
}

// Exists checks that the registry has ref, and says which image and registry when it does not.
func Exists(ctx context.Context, ref string, insecure bool) error {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return err
	}
	if _, err := remote.Head(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("image %s is not available from registry %s: %w", ref, r.Context().RegistryStr(), err)
	}
	return nil
}

// Describe reads ref's image from its registry as an archive describes one: config digest, and
// each layer's blob digest, diff ID and size.
func Describe(ctx context.Context, ref string, insecure bool) (archive.Image, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return archive.Image{}, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		return archive.Image{}, fmt.Errorf("read %s from its registry: %w", ref, err)
	}
	out := archive.Image{Ref: ref}
	cfg, err := img.ConfigName()
	if err != nil {
		return out, err
	}
	out.ID = cfg.String()
	if d, err := img.Digest(); err == nil {
		out.Manifest = d.String()
	}
	layers, err := img.Layers()
	if err != nil {
		return out, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return out, err
		}
		diff, err := l.DiffID()
		if err != nil {
			return out, err
		}
		size, _ := l.Size()
		out.Layers = append(out.Layers, archive.Layer{Digest: d.String(), DiffID: diff.String(), Size: size})
	}
	return out, nil
}

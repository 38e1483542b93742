package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
)

// ImageProblem is one container whose image cannot be used.
type ImageProblem struct {
	File      string
	Kind      string
	Namespace string
	Name      string
	Container string
	Image     string // as written in the manifest
	Reason    string
}

func (p ImageProblem) String() string {
	return fmt.Sprintf("%s: %s %s container %q: %s", p.File, p.Kind, objectName(p.Namespace, p.Name), p.Container, p.Reason)
}

// PreflightError lists every image problem found before anything was applied.
type PreflightError struct {
	Problems []ImageProblem
	Loaded   []string // refs in the loaded set
}

func (e *PreflightError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deploy preflight: %d image problem(s); nothing was applied:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	if len(e.Loaded) > 0 {
		b.WriteString("\nloaded images: " + strings.Join(e.Loaded, ", "))
	} else {
		b.WriteString("\nloaded images: none")
	}
	b.WriteString("\nbuild and load the missing image (the build and load phases), or add its service to the suite so it is built and loaded")
	return b.String()
}

var placeholderRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// Placeholder is the manifest placeholder for a service's image: "holmesgpt-api" → "${HOLMESGPT_API_IMAGE}".
func Placeholder(service string) string {
	return "${" + placeholderName(service) + "}"
}

func placeholderName(service string) string {
	return strings.ToUpper(strings.ReplaceAll(service, "-", "_")) + "_IMAGE"
}

// Render reads dir/*.yaml (and *.yml) in lexical order, not descending into subdirectories, splits
// multi-document files, substitutes the ${<SERVICE>_IMAGE} placeholders of container and init
// container images and sets their pull policy (Never; IfNotPresent in registry mode).
//
// Preflight: unless in registry mode, every image a workload references must be in the loaded set.
// An unknown placeholder or an image that was not loaded yields a *PreflightError listing all problems.
func Render(dir string, images []Image, registry *Registry) ([]Document, error) {
	refs, err := placeholderRefs(images, registry)
	if err != nil {
		return nil, err
	}
	loaded := map[string]bool{}
	var loadedRefs []string
	for _, img := range images {
		if img.Ref != "" {
			loaded[imageref.Normalize(img.Ref)] = true
			loadedRefs = append(loadedRefs, img.Ref)
		}
	}
	policy := "Never"
	if registry != nil {
		policy = "IfNotPresent"
	}

	files, err := manifestFiles(dir)
	if err != nil {
		return nil, err
	}
	var docs []Document
	var problems []ImageProblem
	for _, file := range files {
		objs, err := readManifest(filepath.Join(dir, file))
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			for _, c := range podContainers(obj) {
				image, _ := c["image"].(string)
				problem := ImageProblem{File: file, Kind: obj.GetKind(), Namespace: obj.GetNamespace(),
					Name: obj.GetName(), Container: fmt.Sprint(c["name"]), Image: image}
				substituted, unknown := substitute(image, refs)
				switch {
				case image == "":
					problem.Reason = "has no image"
				case len(unknown) > 0:
					problem.Reason = fmt.Sprintf("image %q uses unknown placeholder(s) %s; known: %s",
						image, strings.Join(unknown, ", "), knownPlaceholders(refs))
				case registry == nil && !loaded[imageref.Normalize(substituted)]:
					problem.Reason = fmt.Sprintf("image %q is not in the loaded set", substituted)
				}
				if problem.Reason != "" {
					problems = append(problems, problem)
					continue
				}
				c["image"] = substituted
				c["imagePullPolicy"] = policy
			}
			docs = append(docs, Document{File: file, Object: obj})
		}
	}
	if len(problems) > 0 {
		return nil, &PreflightError{Problems: problems, Loaded: loadedRefs}
	}
	return docs, nil
}

// placeholderRefs maps placeholder names (without ${}) to the image each stands for.
func placeholderRefs(images []Image, registry *Registry) (map[string]string, error) {
	if registry != nil && registry.Host == "" {
		return nil, fmt.Errorf("deploy: registry mode needs a Host (got tag %q)", registry.Tag)
	}
	refs := map[string]string{}
	for _, img := range images {
		if img.Service == "" {
			return nil, fmt.Errorf("deploy: loaded image %q has no service name", img.Ref)
		}
		name := placeholderName(img.Service)
		if _, dup := refs[name]; dup {
			return nil, fmt.Errorf("deploy: service %q appears twice in the image set (placeholder ${%s})", img.Service, name)
		}
		switch {
		case registry != nil && registry.Tag != "":
			refs[name] = registry.Host + "/" + img.Service + ":" + registry.Tag
		case img.Ref == "":
			return nil, fmt.Errorf("deploy: loaded image for service %q has no reference", img.Service)
		default:
			refs[name] = img.Ref
		}
	}
	return refs, nil
}

func knownPlaceholders(refs map[string]string) string {
	if len(refs) == 0 {
		return "none (no images were loaded)"
	}
	var names []string
	for n := range refs {
		names = append(names, "${"+n+"}")
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// substitute replaces every placeholder in image; unknown lists the ones without an image.
func substitute(image string, refs map[string]string) (out string, unknown []string) {
	out = placeholderRE.ReplaceAllStringFunc(image, func(m string) string {
		name := placeholderRE.FindStringSubmatch(m)[1]
		if ref, ok := refs[name]; ok {
			return ref
		}
		unknown = append(unknown, m)
		return m
	})
	return out, unknown
}

func manifestFiles(dir string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("deploy: no manifests directory given")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("deploy: read manifests directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.Type().IsRegular() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			files = append(files, e.Name())
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("deploy: no *.yaml manifests in %s", dir)
	}
	return files, nil
}

func readManifest(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for n := 1; ; n++ {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: document %d: %w", path, n, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("deploy: %s: document %d: %w", path, n, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
			continue // empty document or only comments
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("deploy: %s: document %d: %w (every document needs apiVersion and kind)", path, n, err)
		}
		if obj.GetName() == "" {
			return nil, fmt.Errorf("deploy: %s: document %d: %s has no metadata.name", path, n, obj.GetKind())
		}
		objs = append(objs, obj)
	}
}

// podSpecPath is where a workload kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"Pod":                   {"spec"},
	"Deployment":            {"spec", "template", "spec"},
	"StatefulSet":           {"spec", "template", "spec"},
	"DaemonSet":             {"spec", "template", "spec"},
	"ReplicaSet":            {"spec", "template", "spec"},
	"ReplicationController": {"spec", "template", "spec"},
	"Job":                   {"spec", "template", "spec"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template", "spec"},
}

// podSpec returns a workload's pod spec as a mutable map, or nil.
func podSpec(obj *unstructured.Unstructured) map[string]any {
	path, ok := podSpecPath[obj.GetKind()]
	if !ok {
		return nil
	}
	var cur any = obj.Object
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	spec, _ := cur.(map[string]any)
	return spec
}

// podContainers returns the containers and init containers of a workload as mutable maps.
func podContainers(obj *unstructured.Unstructured) []map[string]any {
	spec := podSpec(obj)
	if spec == nil {
		return nil
	}
	var out []map[string]any
	for _, field := range []string{"initContainers", "containers"} {
		list, _ := spec[field].([]any)
		for _, c := range list {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

func objectName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// CoverageMountPath is where a service's container finds its GOCOVERDIR.
const CoverageMountPath = "/coverage"

// AddCoverage gives every container that runs one of the images a GOCOVERDIR: a hostPath volume
// nodeDir/<service> (which must exist on every node, writable by the container's user) mounted
// at CoverageMountPath, so a binary built with -cover leaves its counters on the node. The Pod
// Security "baseline" level forbids hostPath volumes, so the namespaces of those workloads that
// the documents create are enforced at "privileged" instead (their warn and audit levels stay).
func AddCoverage(docs []Document, images []Image, nodeDir string) {
	namespaces := map[string]bool{}
	defer func() {
		for _, d := range docs {
			if d.Object.GetKind() == "Namespace" && namespaces[d.Object.GetName()] {
				labels := d.Object.GetLabels()
				if labels == nil {
					labels = map[string]string{}
				}
				labels["pod-security.kubernetes.io/enforce"] = "privileged"
				d.Object.SetLabels(labels)
			}
		}
	}()
	service := map[string]string{}
	for _, img := range images {
		service[imageref.Normalize(img.Ref)] = img.Service
	}
	for _, d := range docs {
		spec := podSpec(d.Object)
		if spec == nil {
			continue
		}
		added := map[string]bool{}
		for _, c := range podContainers(d.Object) {
			image, _ := c["image"].(string)
			svc, ok := service[imageref.Normalize(image)]
			if !ok {
				continue
			}
			volume := "kindling-coverage-" + svc
			env, _ := c["env"].([]any)
			c["env"] = append(env, map[string]any{"name": "GOCOVERDIR", "value": CoverageMountPath})
			mounts, _ := c["volumeMounts"].([]any)
			c["volumeMounts"] = append(mounts, map[string]any{"name": volume, "mountPath": CoverageMountPath})
			namespaces[d.Object.GetNamespace()] = true
			if !added[volume] {
				volumes, _ := spec["volumes"].([]any)
				spec["volumes"] = append(volumes, map[string]any{"name": volume,
					"hostPath": map[string]any{"path": nodeDir + "/" + svc, "type": "Directory"}})
				added[volume] = true
			}
		}
	}
}

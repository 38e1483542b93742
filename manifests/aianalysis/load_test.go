package aianalysis

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is one YAML document of a manifest file.
type object struct {
	file string
	raw  []byte // the document's YAML
	*unstructured.Unstructured
}

func (o object) String() string { return o.file + ": " + o.GetKind() + " " + o.GetName() }

// loadAll decodes every document of manifests/*.yaml, in lexical file order.
func loadAll(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	var objs []object
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: split YAML documents: %v", file, err)
			}
			if isEmptyDocument(doc) {
				continue
			}
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(js); err != nil {
				t.Fatalf("%s: decode %s: %v", file, firstLine(doc), err)
			}
			objs = append(objs, object{file: file, raw: doc, Unstructured: u})
		}
	}
	return objs
}

// find returns the only object of that kind and name.
func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the manifests", kind, name)
	return object{}
}

// decodeStrict decodes the object into a typed value, failing on fields the type does not know.
func decodeStrict(t *testing.T, o object, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.raw, into); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

func isEmptyDocument(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

func firstLine(doc []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(doc)), "\n")
	return line
}

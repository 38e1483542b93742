package aianalysis

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kindling-dev/kindling/services/aianalysis/api/v1alpha1"
	"github.com/kindling-dev/kindling/services/aianalysis/policy"
)

func loadCRD(t *testing.T) (*apiextensionsv1.CustomResourceDefinition, *apiextensionsv1.JSONSchemaProps) {
	t.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	decodeStrict(t, find(t, loadAll(t), "CustomResourceDefinition", "aianalyses.aianalysis.kindling.dev"), &crd)
	if len(crd.Spec.Versions) != 1 {
		t.Fatalf("CRD has %d versions, want 1", len(crd.Spec.Versions))
	}
	v := crd.Spec.Versions[0]
	if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
		t.Fatal("CRD version has no openAPIV3Schema")
	}
	return &crd, v.Schema.OpenAPIV3Schema
}

func TestCRDMatchesTheAPIPackage(t *testing.T) {
	crd, _ := loadCRD(t)
	gv := v1alpha1.GroupVersion
	n := crd.Spec.Names
	if crd.Spec.Group != gv.Group || crd.Spec.Scope != apiextensionsv1.NamespaceScoped ||
		n.Kind != "AIAnalysis" || n.ListKind != "AIAnalysisList" || n.Plural != "aianalyses" || n.Singular != "aianalysis" ||
		crd.Name != n.Plural+"."+gv.Group {
		t.Errorf("CRD identity: name %s group %s scope %s names %+v", crd.Name, crd.Spec.Group, crd.Spec.Scope, n)
	}
	v := crd.Spec.Versions[0]
	if v.Name != gv.Version || !v.Served || !v.Storage {
		t.Errorf("version %s served %v storage %v, want %s served and stored", v.Name, v.Served, v.Storage, gv.Version)
	}
	if v.Subresources == nil || v.Subresources.Status == nil {
		t.Error("the status subresource is not enabled: the controller writes status through it")
	}
}

func TestCRDPrinterColumns(t *testing.T) {
	crd, root := loadCRD(t)
	var got []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		got = append(got, c.Name+" "+c.Type+" "+c.JSONPath)
		if c.JSONPath != ".metadata.creationTimestamp" && lookup(root, c.JSONPath) == nil {
			t.Errorf("column %s: %s is not in the schema", c.Name, c.JSONPath)
		}
	}
	want := []string{
		"Phase string .status.phase",
		"Decision string .status.approval.decision",
		"Confidence number .status.confidence",
		"Workflow string .status.recommendedWorkflow.id",
		"Age date .metadata.creationTimestamp",
	}
	if !slices.Equal(got, want) {
		t.Errorf("printer columns %v, want %v", got, want)
	}
}

func TestCRDSchemaIsStructural(t *testing.T) {
	_, root := loadCRD(t)
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(root, &internal, nil); err != nil {
		t.Fatal(err)
	}
	s, err := schema.NewStructural(&internal)
	if err != nil {
		t.Fatalf("schema is not structural: %v", err)
	}
	if errs := schema.ValidateStructural(nil, s); len(errs) > 0 {
		t.Errorf("schema is not structural: %v", errs.ToAggregate())
	}
}

// The schema must describe exactly the Go types: same field names, types and required fields.
func TestCRDSchemaMatchesTheGoTypes(t *testing.T) {
	_, root := loadCRD(t)
	compareSchema(t, "", reflect.TypeFor[v1alpha1.AIAnalysis](), *root)

	status := root.Properties["status"]
	var phases []string
	for _, p := range []v1alpha1.Phase{v1alpha1.PhasePending, v1alpha1.PhaseInvestigating, v1alpha1.PhaseAnalyzing, v1alpha1.PhaseCompleted, v1alpha1.PhaseFailed} {
		phases = append(phases, string(p))
	}
	if got := enumValues(status.Properties["phase"]); !slices.Equal(got, phases) {
		t.Errorf("status.phase enum %v, want %v", got, phases)
	}
	if got := enumValues(status.Properties["approval"].Properties["decision"]); !slices.Equal(got, policy.Decisions) {
		t.Errorf("status.approval.decision enum %v, want %v", got, policy.Decisions)
	}
}

func compareSchema(t *testing.T, path string, typ reflect.Type, s apiextensionsv1.JSONSchemaProps) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	wantType := map[reflect.Kind]string{
		reflect.String: "string", reflect.Bool: "boolean", reflect.Float64: "number",
		reflect.Int32: "integer", reflect.Int64: "integer",
		reflect.Struct: "object", reflect.Map: "object", reflect.Slice: "array",
	}[typ.Kind()]
	if typ == reflect.TypeFor[metav1.Time]() {
		if s.Type != "string" || s.Format != "date-time" {
			t.Errorf("%s: type %s format %s, want a date-time string", path, s.Type, s.Format)
		}
		return
	}
	if s.Type != wantType {
		t.Errorf("%s: schema type %q, Go type %s wants %q", path, s.Type, typ, wantType)
		return
	}
	switch typ.Kind() {
	case reflect.Map:
		if s.AdditionalProperties == nil || s.AdditionalProperties.Schema == nil {
			t.Errorf("%s: map without additionalProperties", path)
			return
		}
		compareSchema(t, path+"[*]", typ.Elem(), *s.AdditionalProperties.Schema)
	case reflect.Slice:
		if s.Items == nil || s.Items.Schema == nil {
			t.Errorf("%s: array without items", path)
			return
		}
		compareSchema(t, path+"[]", typ.Elem(), *s.Items.Schema)
	case reflect.Struct:
		if path == ".metadata" {
			return // the API server owns the ObjectMeta schema
		}
		fields, required := jsonFields(typ)
		if got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
			t.Errorf("%s: schema properties %v, Go fields %v", path, got, want)
		}
		if got := slices.Sorted(slices.Values(s.Required)); !slices.Equal(got, required) {
			t.Errorf("%s: schema requires %v, Go fields without omitempty are %v", path, got, required)
		}
		for name, ft := range fields {
			if prop, ok := s.Properties[name]; ok {
				compareSchema(t, path+"."+name, ft, prop)
			}
		}
	}
}

// jsonFields returns the JSON names and types of a struct's fields (embedded inline structs flattened)
// and, sorted, the names of those without omitempty.
func jsonFields(typ reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var required []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			inner, innerRequired := jsonFields(f.Type)
			for k, v := range inner {
				fields[k] = v
			}
			required = append(required, innerRequired...)
			continue
		}
		fields[name] = f.Type
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	slices.Sort(required)
	return fields, required
}

// lookup follows a printer-column JSONPath like .status.approval.decision through the schema.
func lookup(s *apiextensionsv1.JSONSchemaProps, jsonPath string) *apiextensionsv1.JSONSchemaProps {
	for _, name := range strings.Split(strings.TrimPrefix(jsonPath, "."), ".") {
		next, ok := s.Properties[name]
		if !ok {
			return nil
		}
		s = &next
	}
	return s
}

func enumValues(s apiextensionsv1.JSONSchemaProps) []string {
	var out []string
	for _, e := range s.Enum {
		out = append(out, strings.Trim(string(e.Raw), `"`))
	}
	return out
}

package v1alpha1

import (
	"reflect"
	"testing"

	"sigs.k8s.io/randfill"
)

// The deepcopy functions are hand-written: check that copies are equal and share no memory.
func TestDeepCopyCopiesEverything(t *testing.T) {
	for seed := int64(0); seed < 20; seed++ {
		f := randfill.NewWithSeed(seed).NilChance(0.2).NumElements(1, 3)
		var in AIAnalysisList
		f.Fill(&in)

		out := in.DeepCopy()
		if !reflect.DeepEqual(&in, out) {
			t.Fatalf("seed %d: copy differs from the original", seed)
		}
		assertNoSharing(t, "AIAnalysisList", reflect.ValueOf(in), reflect.ValueOf(*out))

		for i := range in.Items {
			if obj := in.Items[i].DeepCopyObject(); !reflect.DeepEqual(&in.Items[i], obj) {
				t.Fatalf("seed %d: DeepCopyObject differs from the original", seed)
			}
		}
	}
	var nilAnalysis *AIAnalysis
	if nilAnalysis.DeepCopy() != nil {
		t.Error("DeepCopy of nil is not nil")
	}
}

func assertNoSharing(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: pointer shared between original and copy", path)
		}
		assertNoSharing(t, path, a.Elem(), b.Elem())
	case reflect.Map:
		if a.IsNil() || a.Len() == 0 {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: map shared between original and copy", path)
		}
		for _, k := range a.MapKeys() {
			assertNoSharing(t, path+"["+k.String()+"]", a.MapIndex(k), b.MapIndex(k))
		}
	case reflect.Slice:
		if a.IsNil() || a.Len() == 0 {
			return
		}
		if a.Pointer() == b.Pointer() {
			t.Errorf("%s: slice shared between original and copy", path)
		}
		for i := range a.Len() {
			assertNoSharing(t, path+"[]", a.Index(i), b.Index(i))
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				assertNoSharing(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	}
}

package aianalysis

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const namespace = "kindling"

var placeholders = map[string]string{ // Deployment name → image placeholder
	"datastorage":   "${DATASTORAGE_IMAGE}",
	"holmesgpt-api": "${HOLMESGPT_API_IMAGE}",
	"aianalysis":    "${AIANALYSIS_IMAGE}",
}

var clusterScoped = []string{"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}

func TestFilesFollowTheDesign(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	want := []string{"00-namespace.yaml", "10-crd.yaml", "20-rbac.yaml", "30-policy.yaml", "40-datastorage.yaml", "41-holmesgpt-api.yaml", "50-aianalysis.yaml"}
	if !slices.Equal(files, want) {
		t.Errorf("manifest files = %v, want %v", files, want)
	}
}

func TestExpectedObjects(t *testing.T) {
	var got []string
	for _, o := range loadAll(t) {
		got = append(got, o.String())
	}
	want := []string{
		"00-namespace.yaml: Namespace kindling",
		"10-crd.yaml: CustomResourceDefinition aianalyses.aianalysis.kindling.dev",
		"20-rbac.yaml: ServiceAccount aianalysis",
		"20-rbac.yaml: ClusterRole kindling-aianalysis",
		"20-rbac.yaml: ClusterRoleBinding kindling-aianalysis",
		"30-policy.yaml: ConfigMap aianalysis-policy",
		"40-datastorage.yaml: Deployment datastorage",
		"40-datastorage.yaml: Service datastorage",
		"41-holmesgpt-api.yaml: Deployment holmesgpt-api",
		"41-holmesgpt-api.yaml: Service holmesgpt-api",
		"50-aianalysis.yaml: Deployment aianalysis",
		"50-aianalysis.yaml: Service aianalysis-metrics",
	}
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNamespacedObjectsAreInKindling(t *testing.T) {
	for _, o := range loadAll(t) {
		if slices.Contains(clusterScoped, o.GetKind()) {
			if o.GetNamespace() != "" {
				t.Errorf("%s: cluster-scoped object has namespace %q", o, o.GetNamespace())
			}
			continue
		}
		if o.GetNamespace() != namespace {
			t.Errorf("%s: namespace %q, want %q", o, o.GetNamespace(), namespace)
		}
	}
}

func TestOnlyKnownPlaceholders(t *testing.T) {
	known := slices.Collect(maps.Values(placeholders))
	files, _ := filepath.Glob("*.yaml")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		for _, p := range regexp.MustCompile(`\$\{[^}]*\}`).FindAllString(string(data), -1) {
			if !slices.Contains(known, p) {
				t.Errorf("%s: unknown placeholder %s (the deploy phase substitutes only %v)", file, p, known)
			}
		}
	}
}

func TestDeployments(t *testing.T) {
	objs := loadAll(t)
	seen := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		decodeStrict(t, o, &d)
		seen[d.Name] = true
		want, ok := placeholders[d.Name]
		if !ok {
			t.Errorf("%s: no image placeholder for this service", o)
			continue
		}
		pod := d.Spec.Template.Spec
		if d.Spec.Selector == nil || !isSubset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not match the pod labels %v", o, d.Spec.Selector, d.Spec.Template.Labels)
		}
		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", o)
		}
		if len(pod.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", o, len(pod.Containers))
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			where := fmt.Sprintf("%s container %s", o, c.Name)
			if c.Image != want {
				t.Errorf("%s: image %q, want exactly %q", where, c.Image, want)
			}
			if c.ImagePullPolicy != corev1.PullNever {
				t.Errorf("%s: imagePullPolicy %q, want Never (images are loaded into the node)", where, c.ImagePullPolicy)
			}
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s: want an HTTP readiness probe on /readyz", where)
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: want an HTTP liveness probe on /healthz", where)
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p != nil && p.HTTPGet != nil && !hasPort(c, p.HTTPGet.Port) {
					t.Errorf("%s: probe port %s is not a container port", where, p.HTTPGet.Port.String())
				}
			}
			req := c.Resources.Requests
			if req.Cpu().IsZero() || req.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: want cpu and memory requests and a memory limit, got %v", where, c.Resources)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: want readOnlyRootFilesystem and no privilege escalation", where)
			}
		}
	}
	for name := range placeholders {
		if !seen[name] {
			t.Errorf("no Deployment %s", name)
		}
	}
}

func TestDatastorageDeployment(t *testing.T) {
	objs := loadAll(t)
	var d appsv1.Deployment
	decodeStrict(t, find(t, objs, "Deployment", "datastorage"), &d)
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate (bbolt locks its file)", d.Spec.Strategy.Type)
	}
	sc := d.Spec.Template.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.FSGroup == nil || *sc.FSGroup != 65532 {
		t.Errorf("pod securityContext %+v, want runAsUser and fsGroup 65532", sc)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if env := envMap(c); env["DATA_DIR"] != "/data" {
		t.Errorf("DATA_DIR = %q, want /data", env["DATA_DIR"])
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/data" {
		t.Errorf("volume mounts %+v, want the data volume at /data", c.VolumeMounts)
	}
	vols := d.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].Name != "data" || vols[0].EmptyDir == nil || vols[0].EmptyDir.SizeLimit == nil {
		t.Errorf("volumes %+v, want the size-limited emptyDir data", vols)
	}
}

func TestAIAnalysisDeployment(t *testing.T) {
	objs := loadAll(t)
	var d appsv1.Deployment
	decodeStrict(t, find(t, objs, "Deployment", "aianalysis"), &d)
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "aianalysis" {
		t.Errorf("serviceAccountName %q, want aianalysis", pod.ServiceAccountName)
	}
	c := pod.Containers[0]
	env := envMap(c)
	wantEnv := map[string]string{
		"HOLMESGPT_URL":   "http://holmesgpt-api.kindling.svc:8080",
		"DATASTORAGE_URL": "http://datastorage.kindling.svc:8080",
		"POLICY_FILE":     "/etc/aianalysis/policy/approval.rego",
	}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || portNumber(c, p.HTTPGet.Port) != 8081 {
			t.Errorf("probe %+v, want HTTP on :8081", p)
		}
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/aianalysis/policy" || c.VolumeMounts[0].SubPath != "" {
		t.Errorf("volume mounts %+v, want the policy directory at /etc/aianalysis/policy without subPath (subPath mounts never update)", c.VolumeMounts)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != "aianalysis-policy" ||
		pod.Volumes[0].Name != c.VolumeMounts[0].Name {
		t.Errorf("volumes %+v, want the ConfigMap aianalysis-policy", pod.Volumes)
	}
	if portNumber(c, intstr.FromString("metrics")) != 8080 {
		t.Error("want a container port named metrics on 8080")
	}
}

func TestServices(t *testing.T) {
	objs := loadAll(t)
	for _, tc := range []struct {
		service, deployment string
		nodePort            int32
	}{
		{"datastorage", "datastorage", 30081},
		{"holmesgpt-api", "holmesgpt-api", 30082},
		{"aianalysis-metrics", "aianalysis", 0},
	} {
		var s corev1.Service
		decodeStrict(t, find(t, objs, "Service", tc.service), &s)
		var d appsv1.Deployment
		decodeStrict(t, find(t, objs, "Deployment", tc.deployment), &d)
		if !isSubset(s.Spec.Selector, d.Spec.Template.Labels) || len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s: selector %v does not select the %s pods %v", tc.service, s.Spec.Selector, tc.deployment, d.Spec.Template.Labels)
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8080 || portNumber(d.Spec.Template.Spec.Containers[0], s.Spec.Ports[0].TargetPort) != 8080 {
			t.Errorf("Service %s: ports %+v, want 8080 to the container's 8080", tc.service, s.Spec.Ports)
		}
		if tc.nodePort != 0 && (s.Spec.Type != corev1.ServiceTypeNodePort || s.Spec.Ports[0].NodePort != tc.nodePort) {
			t.Errorf("Service %s: type %s nodePort %d, want NodePort %d", tc.service, s.Spec.Type, s.Spec.Ports[0].NodePort, tc.nodePort)
		}
	}
}

func TestRBACIsMinimal(t *testing.T) {
	objs := loadAll(t)
	var role rbacv1.ClusterRole
	decodeStrict(t, find(t, objs, "ClusterRole", "kindling-aianalysis"), &role)
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"aianalysis.kindling.dev"}, Resources: []string{"aianalyses"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
		{APIGroups: []string{"aianalysis.kindling.dev"}, Resources: []string{"aianalyses/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
	if fmt.Sprint(role.Rules) != fmt.Sprint(want) {
		t.Errorf("rules:\n%v\nwant:\n%v", role.Rules, want)
	}

	var binding rbacv1.ClusterRoleBinding
	decodeStrict(t, find(t, objs, "ClusterRoleBinding", "kindling-aianalysis"), &binding)
	wantSubject := rbacv1.Subject{Kind: "ServiceAccount", Name: "aianalysis", Namespace: namespace}
	if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0] != wantSubject {
		t.Errorf("binding roleRef %+v subjects %+v", binding.RoleRef, binding.Subjects)
	}
	find(t, objs, "ServiceAccount", "aianalysis")
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func hasPort(c corev1.Container, port intstr.IntOrString) bool { return portNumber(c, port) != 0 }

// portNumber resolves a numeric or named port of the container; 0 if it has no such port.
func portNumber(c corev1.Container, port intstr.IntOrString) int32 {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p.ContainerPort
		}
	}
	return 0
}

func isSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

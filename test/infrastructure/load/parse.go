package load

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
)

// nodeImage is one image as the node's CRI (kubelet's view) lists it.
type nodeImage struct {
	ID       string
	RepoTags []string
}

// parseCrictlImages parses `crictl images -o json` (stdout only).
func parseCrictlImages(out []byte) ([]nodeImage, error) {
	var list struct {
		Images *[]struct {
			ID       string   `json:"id"`
			RepoTags []string `json:"repoTags"`
		} `json:"images"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("parse crictl images output: %w", err)
	}
	if list.Images == nil {
		return nil, fmt.Errorf("parse crictl images output: no \"images\" list")
	}
	imgs := make([]nodeImage, 0, len(*list.Images))
	for _, i := range *list.Images {
		imgs = append(imgs, nodeImage{ID: i.ID, RepoTags: i.RepoTags})
	}
	return imgs, nil
}

// missing returns the wanted images the node lacks: no image with that ID carries that ref.
func missing(have []nodeImage, want []Image) []Image {
	var out []Image
	for _, w := range want {
		if !present(have, w) {
			out = append(out, w)
		}
	}
	return out
}

func present(have []nodeImage, w Image) bool {
	ref := imageref.Normalize(w.Ref)
	for _, h := range have {
		if h.ID != w.ID {
			continue
		}
		for _, t := range h.RepoTags {
			if imageref.Normalize(t) == ref {
				return true
			}
		}
	}
	return false
}

var idRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func validate(want []Image) error {
	if len(want) == 0 {
		return fmt.Errorf("no images given to check after loading")
	}
	for _, w := range want {
		if w.Ref == "" {
			return fmt.Errorf("image %s has no reference", w.ID)
		}
		if !idRE.MatchString(w.ID) {
			return fmt.Errorf("image %s: ID %q is not sha256:<64 hex>", w.Ref, w.ID)
		}
	}
	return nil
}

// parseSnapshotter finds the CRI snapshotter in `containerd config dump` output, like kind's
// nodeutils: config version 2 keeps it in [plugins."io.containerd.grpc.v1.cri".containerd],
// versions 3 and 4 (containerd 2.x) in [plugins.'io.containerd.cri.v1.images']. containerd 2.x
// dumps single-quoted (literal) keys and strings; this reads just enough TOML for that.
func parseSnapshotter(config string) (string, error) {
	version := 1 // containerd's default when the key is absent
	var table []string
	found := map[string]string{}
	for line := range strings.Lines(config) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "["):
			end := strings.LastIndex(line, "]")
			if end < 0 {
				return "", fmt.Errorf("containerd config: bad table header %q", line)
			}
			table = tomlKey(strings.Trim(line[:end], "[]"))
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		path := append(slices.Clone(table), tomlKey(key)...)
		switch {
		case len(path) == 1 && path[0] == "version":
			v, err := strconv.Atoi(strings.TrimSpace(strings.Split(val, "#")[0]))
			if err != nil {
				return "", fmt.Errorf("containerd config: bad version %q", strings.TrimSpace(val))
			}
			version = v
		case path[len(path)-1] == "snapshotter":
			if s, ok := tomlString(strings.TrimSpace(val)); ok {
				found[strings.Join(path, "\x00")] = s
			}
		}
	}
	var want []string
	switch version {
	case 2:
		want = []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "snapshotter"}
	case 3, 4:
		want = []string{"plugins", "io.containerd.cri.v1.images", "snapshotter"}
	default:
		return "", fmt.Errorf("unknown containerd config version %d (supported: 2, 3 and 4)", version)
	}
	s := found[strings.Join(want, "\x00")]
	if s == "" {
		return "", fmt.Errorf("containerd config version %d sets no %s", version, strings.Join(want, "."))
	}
	return s, nil
}

// tomlKey splits a dotted TOML key into its parts, unquoting "basic" and 'literal' parts.
func tomlKey(key string) []string {
	var parts []string
	var cur strings.Builder
	var quote rune
	for _, r := range strings.TrimSpace(key) {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
		case r == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// tomlString reads a quoted TOML string at the start of val (a comment may follow).
func tomlString(val string) (string, bool) {
	if len(val) < 2 {
		return "", false
	}
	switch val[0] {
	case '\'':
		end := strings.IndexByte(val[1:], '\'')
		if end < 0 {
			return "", false
		}
		return val[1 : 1+end], true
	case '"':
		for i := 1; i < len(val); i++ {
			switch val[i] {
			case '\\':
				i++
			case '"':
				s, err := strconv.Unquote(val[:i+1])
				return s, err == nil
			}
		}
	}
	return "", false
}

package load

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"

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
// versions 3 and 4 (containerd 2.x) in [plugins.'io.containerd.cri.v1.images'].
func parseSnapshotter(config string) (string, error) {
	var doc map[string]any
	if err := toml.Unmarshal([]byte(config), &doc); err != nil {
		return "", fmt.Errorf("containerd config dump does not parse as TOML: %w", err)
	}
	version := int64(1) // containerd's default when the key is absent
	if v, ok := doc["version"].(int64); ok {
		version = v
	}
	var path []string
	switch version {
	case 2:
		path = []string{"plugins", "io.containerd.grpc.v1.cri", "containerd", "snapshotter"}
	case 3, 4:
		path = []string{"plugins", "io.containerd.cri.v1.images", "snapshotter"}
	default:
		return "", fmt.Errorf("unknown containerd config version %d (supported: 2, 3 and 4)", version)
	}
	var cur any = doc
	for _, key := range path {
		table, _ := cur.(map[string]any)
		cur = table[key]
	}
	if s, _ := cur.(string); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("containerd config version %d sets no %s", version, strings.Join(path, "."))
}

package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
)

// normalizeID turns the engines' ID spellings ("<hex>", "sha256:<hex>") into "sha256:<hex>".
func normalizeID(id string) string {
	id = strings.TrimSpace(id)
	if id == "" || strings.Contains(id, ":") {
		return id
	}
	if len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
		return "sha256:" + id
	}
	return id
}

// decodeJSON decodes the first JSON value in out, ignoring anything the CLI printed around it.
func decodeJSON(out []byte, v any) error {
	start := bytes.IndexAny(out, "[{")
	if start < 0 {
		return fmt.Errorf("no JSON in %q", LastLines(string(out), 3))
	}
	return json.NewDecoder(bytes.NewReader(out[start:])).Decode(v)
}

// parseDiskUsage reads "system df --format {{json .}}" output: one JSON object per line (docker,
// podman 4) or a JSON array of them.
func parseDiskUsage(out []byte) (Usage, error) {
	type row struct {
		Type        string          `json:"Type"`
		Size        json.RawMessage `json:"Size"`
		Reclaimable json.RawMessage `json:"Reclaimable"`
	}
	var rows []row
	decoder := json.NewDecoder(bytes.NewReader(out))
	for {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Usage{}, err
		}
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			var many []row
			if err := json.Unmarshal(raw, &many); err != nil {
				return Usage{}, err
			}
			rows = append(rows, many...)
			continue
		}
		var one row
		if err := json.Unmarshal(raw, &one); err != nil {
			return Usage{}, err
		}
		rows = append(rows, one)
	}
	if len(rows) == 0 {
		return Usage{}, fmt.Errorf("no rows in %q", LastLines(string(out), 3))
	}
	var usage Usage
	for _, r := range rows {
		size, err := jsonSize(r.Size)
		if err != nil {
			return Usage{}, fmt.Errorf("%s size: %w", r.Type, err)
		}
		reclaimable, err := jsonSize(r.Reclaimable)
		if err != nil {
			return Usage{}, fmt.Errorf("%s reclaimable: %w", r.Type, err)
		}
		switch strings.ToLower(r.Type) {
		case "images":
			usage.Images = size
		case "containers":
			usage.Containers = size
		case "local volumes", "volumes":
			usage.Volumes = size
		case "build cache":
			usage.BuildCache = size
		default:
			continue
		}
		usage.Reclaimable += reclaimable
	}
	return usage, nil
}

// Kept reports whether keep protects img. A keep entry is an image ID ("sha256:<hex>"), a reference
// or a path.Match glob such as "kindenv/*" ("*" does not cross "/", but matches ":tag"). References
// and entries are compared also with "localhost/", "docker.io/library/" or "docker.io/" stripped,
// and an entry without a tag matches every tag of that repository. An image is kept when any of
// its names matches.
func Kept(img Image, keep []string) bool {
	for _, entry := range keep {
		if entry == img.ID || normalizeID(entry) == img.ID {
			return true
		}
		for _, ref := range img.Refs {
			for _, pattern := range imageref.Shortened(entry) {
				for _, name := range imageref.Spellings(ref) {
					if ok, _ := path.Match(pattern, name); ok {
						return true
					}
				}
			}
		}
	}
	return false
}

func validateKeep(keep []string) error {
	for _, entry := range keep {
		if _, err := path.Match(entry, ""); err != nil {
			return fmt.Errorf("keep entry %q is not a valid pattern (path.Match syntax, e.g. \"kindenv/*\"): %w", entry, err)
		}
	}
	return nil
}

// dockerHostRemote reports whether DOCKER_HOST points at a daemon on another machine.
func dockerHostRemote() bool {
	host := os.Getenv("DOCKER_HOST")
	return strings.HasPrefix(host, "tcp://") || strings.HasPrefix(host, "ssh://")
}

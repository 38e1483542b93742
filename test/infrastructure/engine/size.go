package engine

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docker/go-units"
)

// ParseSize parses a size as the engines print it: "0B", "1.59MB", "1.59 MB", "345.6kB",
// "2GiB", a plain byte count, or docker's reclaimable form "348.1MB (100%)". Decimal units
// (kB, MB, GB) are powers of 1000 as in docker's and podman's output (go-units' HumanSize
// writes them); KiB, MiB, ... powers of 1024.
func ParseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	if i := strings.IndexByte(text, '('); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	parse := units.FromHumanSize
	if strings.ContainsAny(text, "iI") {
		parse = units.RAMInBytes
	}
	n, err := parse(text)
	if err != nil {
		return 0, fmt.Errorf("parse size %q: %w", s, err)
	}
	return n, nil
}

// jsonSize decodes a size that an engine prints either as a JSON number (podman) or as a
// human-readable string (docker).
func jsonSize(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var number float64
	if err := json.Unmarshal(raw, &number); err == nil {
		return int64(number), nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return 0, fmt.Errorf("size %s is neither a number nor a string", raw)
	}
	return ParseSize(text)
}

// reclaimedSpace returns the size in a "Total reclaimed space: X" line, 0 when there is none.
func reclaimedSpace(output string) (int64, error) {
	const marker = "Total reclaimed space:"
	for _, line := range strings.Split(output, "\n") {
		if _, after, ok := strings.Cut(line, marker); ok {
			return ParseSize(after)
		}
		// buildx prune: "Total:\t3B"
		if after, ok := strings.CutPrefix(strings.TrimSpace(line), "Total:"); ok {
			return ParseSize(after)
		}
	}
	return 0, nil
}

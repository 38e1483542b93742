package load

import (
	"context"
	"fmt"
	"slices"

	"sigs.k8s.io/kind/pkg/cluster/nodes"
)

// RemoveStale deletes, from every node, the images whose reference stale matches and whose ID is
// not among keep: the earlier builds of a suite on a cluster that outlives one run. An image a
// container still uses cannot be deleted; that is logged, not an error. It returns the removed
// references.
func RemoveStale(ctx context.Context, ns []nodes.Node, keep []Image, stale func(ref string) bool, log func(string, ...any)) ([]string, error) {
	var keepIDs []string
	for _, k := range keep {
		keepIDs = append(keepIDs, k.ID)
	}
	var removed []string
	for _, n := range ns {
		have, err := listImages(ctx, n)
		if err != nil {
			return removed, err
		}
		for _, img := range have {
			if slices.Contains(keepIDs, img.ID) || !slices.ContainsFunc(img.RepoTags, stale) {
				continue
			}
			if _, err := nodeRun(ctx, n, nil, "crictl", "rmi", img.ID); err != nil {
				if log != nil {
					log("node %s: kept stale image %v: %v", n, img.RepoTags, err)
				}
				continue
			}
			removed = append(removed, fmt.Sprintf("%s %v", n, img.RepoTags))
		}
	}
	return removed, nil
}

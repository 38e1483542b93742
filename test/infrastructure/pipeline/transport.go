package pipeline

// Transport is how the images travel from the engine to the nodes. The configuration decides it
// once, when the run starts; the phases follow it and never ask again.
type Transport int

const (
	// TransportArchive exports a verified archive and streams it into every node (image by
	// image when only that fits the disk budget); after prune it is the images' only copy.
	TransportArchive Transport = iota
	// TransportLocalRegistry pushes to the suite's own registry (E2E_REGISTRY=local) and reads
	// every image back; the nodes pull from it.
	TransportLocalRegistry
	// TransportPush pushes to IMAGE_REGISTRY (without IMAGE_TAG) and reads every image back; the
	// nodes pull from it.
	TransportPush
	// TransportPullOnly builds nothing here: the images are in IMAGE_REGISTRY under IMAGE_TAG and
	// the nodes pull them.
	TransportPullOnly
)

// Transport is the transport the configuration chooses.
func (c Config) Transport() Transport {
	switch {
	case c.Registry != nil:
		return TransportPullOnly
	case c.LocalRegistry:
		return TransportLocalRegistry
	case c.PushTo != "":
		return TransportPush
	}
	return TransportArchive
}

// pushes reports whether export pushes to a registry instead of writing an archive.
func (t Transport) pushes() bool { return t == TransportLocalRegistry || t == TransportPush }

func (t Transport) String() string {
	switch t {
	case TransportLocalRegistry:
		return "the suite's local registry"
	case TransportPush:
		return "a push to IMAGE_REGISTRY"
	case TransportPullOnly:
		return "pull-only from IMAGE_REGISTRY"
	}
	return "a verified archive"
}

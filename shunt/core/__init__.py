"""The shared core: mapping file, key layout, metadata codec, remote store
clients; used by the proxy middleware and the sync daemon alike."""

"""The proxy side: the ``cloud_shunt`` middleware and its per-request
contexts (objects, listings, writes, SLOs, restores)."""

"""The cluster layer: the Redis bus, node membership and delivery across nodes."""

"""HTTP adapters over API Gateway HTTP API (payload format 2.0) events: the registry API
(`maas.http.registry`) over the control plane and `/metrics` (`maas.http.metrics`), both on
Powertools' resolver; and the predict function's OIP routes without a web framework
(`maas.http.oip`, with its router and proxy responses)."""

"""The HTTP adapters over API Gateway events: the registry API and `/metrics` here; the OIP API
is maas.rest."""

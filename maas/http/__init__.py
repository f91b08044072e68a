"""The HTTP adapters over API Gateway events: the registry API here; the OIP API is maas.rest."""

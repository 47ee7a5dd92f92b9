"""HTTP handlers, one module per area: decode the request, call the service, encode."""

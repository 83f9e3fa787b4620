"""The registry's HTTP edge: routes that parse, call the service and map errors."""

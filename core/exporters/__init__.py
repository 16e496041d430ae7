"""Writing a host in another tool's format (the reverse of :mod:`picbeam.importers`)."""

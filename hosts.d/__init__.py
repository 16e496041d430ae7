"""Host presets that ship with picbeam: every *.toml file here is a host (see the README's hosts.d schema)."""

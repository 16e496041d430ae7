"""picbeam's built-in plugins. Each module is registered under the ``picbeam`` entry-point group in
pyproject.toml and found exactly the way a third party's plugin is."""

"""Code systems, value sets and concept maps the server uses."""

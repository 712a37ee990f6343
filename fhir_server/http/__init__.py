"""The HTTP face: negotiation, headers, bodies, routes. The only layer that knows HTTP."""

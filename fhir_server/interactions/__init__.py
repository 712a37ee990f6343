"""One module per FHIR interaction; each returns an InteractionResult and knows nothing of HTTP."""

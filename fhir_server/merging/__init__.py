"""Patient merge (``$merge``) and its undo (``$unmerge``): what changes, computed without
storage; ``fhir_server.operations.merge`` loads, checks and writes it in one transaction."""

"""Patient matching (``Patient/$match``, ``$merge``, ``fhir-server match scan``): normalise two
patients' demographics, compare them field by field and score the comparison with
Fellegi-Sunter weights. Pure: storage finds the candidates (``storage.match_candidates``)."""

"""Documents and files: Binary over the blob store, DocumentReference over media assets."""

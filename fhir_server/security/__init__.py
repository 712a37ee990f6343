"""Who is asking and what they may do: bearer tokens, SMART scopes, patient compartments, audit."""

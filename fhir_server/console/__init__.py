"""The web console at ``/console``: server-rendered pages (Jinja2, one small CSS file, no
JavaScript) for the people who keep the patient index clean. Patient search, a patient's page,
the duplicates queue, a side-by-side comparison with the ``$match`` explanation, merge with a
preview, 'not a duplicate', and undo of a merge.

Modules: ``routes`` (HTTP: the route table and handlers), ``session`` (login cookie, CSRF,
forms), ``rendering`` (templates and page responses), ``display`` (FHIR -> what a page shows,
pure), ``patients``, ``duplicates``, ``comparison`` and ``merging`` (what each page needs,
through the repositories the request may use)."""
